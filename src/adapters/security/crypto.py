"""Symmetric authenticated encryption of short strings with Fernet (AES-128-CBC + HMAC).

Several keys allow a rotation: the first encrypts, every one decrypts (MultiFernet); after
adding a new first key, re-encrypting what is stored lets the old key go.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class FernetCipher:
    """The `Cipher` port. `keys`: one url-safe base64 32-byte key (see `generate_key`), or
    several, newest first (a comma list is split)."""

    def __init__(self, keys: str | bytes | Sequence[str]) -> None:
        if isinstance(keys, bytes):
            keys = keys.decode()
        parts = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else list(keys)
        parts = [k for k in parts if k]
        if not parts:
            raise ValueError("at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in parts])

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
