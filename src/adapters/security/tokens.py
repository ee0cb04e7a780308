"""Keyed hashing of bearer tokens and API keys, and generation of new ones."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from domain.api_keys import API_KEY_PREFIX
from domain.webhooks import SECRET_BYTES, secret_from_bytes

SESSION_TOKEN_PREFIX = "ths_"  # noqa: S105 (a prefix, not a secret)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_BYTES = 32
# 62**43 > 2**256, so 43 base62 digits hold 32 random bytes.
_BASE62_LENGTH = 43
MIN_SECRET_BYTES = 16


class HmacTokenHasher:
    """The `TokenHasher` port: HMAC-SHA256 keyed by `SESSION_HASH_SECRET`, as a hex digest.

    Without the secret, a stolen table of hashes cannot be checked against guesses; changing
    the secret invalidates every stored session and key.
    """

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"the token hash secret needs at least {MIN_SECRET_BYTES} bytes")
        # Keyed once; each hash continues from a copy (the key schedule runs on every request).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hash(self, token: str) -> str:
        mac = self._keyed.copy()
        mac.update(token.encode())
        return mac.hexdigest()


class RandomSecretGenerator:
    """The `SecretGenerator` port over the `secrets` module.

    Both kinds carry 32 random bytes as 43 base62 characters (copyable by double-click) behind a
    prefix that tells them apart and lets secret scanners spot them: `ths_` (session), `thk_` (key).
    """

    def session_token(self) -> str:
        return SESSION_TOKEN_PREFIX + _random_base62()

    def api_key(self) -> str:
        return API_KEY_PREFIX + _random_base62()

    def webhook_secret(self) -> str:
        """The `WebhookSecrets` port: `whsec_` and the base64 of 32 random bytes."""
        return secret_from_bytes(secrets.token_bytes(SECRET_BYTES))


def _random_base62() -> str:
    number = int.from_bytes(secrets.token_bytes(_RANDOM_BYTES), "big")
    digits = []
    for _ in range(_BASE62_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)
