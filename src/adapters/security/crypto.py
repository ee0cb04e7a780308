"""Symmetric authenticated encryption of short strings with Fernet (AES-128-CBC + HMAC).

Several keys allow a rotation: the first encrypts, every one decrypts (MultiFernet); after
adding a new first key, re-encrypting what is stored lets the old key go.

cryptography is imported on the first encryption or decryption, not with this module: only
webhook secrets use the cipher, and its native library costs every process several MiB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


class FernetCipher:
    """The `Cipher` port. `keys`: one url-safe base64 32-byte key (see `generate_key`), or
    several, newest first (a comma list is split). A malformed key raises `ValueError` on the
    first use (the settings refuse one at start)."""

    def __init__(self, keys: str | bytes | Sequence[str]) -> None:
        if isinstance(keys, bytes):
            keys = keys.decode()
        parts = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else list(keys)
        parts = [k for k in parts if k]
        if not parts:
            raise ValueError("at least one Fernet key is needed")
        self._keys = parts
        self._built: MultiFernet | None = None

    @property
    def _fernet(self) -> MultiFernet:
        if self._built is None:
            from cryptography.fernet import Fernet, MultiFernet

            self._built = MultiFernet([Fernet(k) for k in self._keys])
        return self._built

    @staticmethod
    def generate_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("ciphertext was altered or made with another key") from None
