"""Symmetric authenticated encryption of short strings with Fernet (AES-128-CBC + HMAC)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class FernetCipher:
    """The `Cipher` port. `key` is a url-safe base64 32-byte key (see `generate_key`)."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("ciphertext was altered or made with another key") from None
