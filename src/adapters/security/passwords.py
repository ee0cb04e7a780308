"""Argon2id password hashing (argon2-cffi), run in worker threads off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2idPasswordHasher:
    """The `PasswordHasher` port over argon2id.

    Defaults are argon2-cffi's (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4). Hashes made with
    other parameters still verify, and `needs_rehash` reports them so log-in can upgrade them.
    At most `max_concurrency` hashes run at once, which bounds memory use
    (`max_concurrency * memory_cost` KiB) under a flood of log-ins.
    """

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost: int = 64 * 1024,
        parallelism: int = 4,
        hash_len: int = 32,
        salt_len: int = 16,
        max_concurrency: int = 4,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._argon2 = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrency)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
