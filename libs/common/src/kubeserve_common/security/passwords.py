"""Password hashing for the whole platform: argon2id through argon2-cffi, run off the event loop
with bounded concurrency, with a dummy verification so unknown users cost as much as real ones.

Defaults are RFC 9106's second recommended ("low-memory") profile: argon2id, t=3, m=64 MiB,
p=4. It is stronger than OWASP's minimum (m=19 MiB, t=2, p=1) and is what DESIGN.md asks for;
with a concurrency of 2 the worst case is 128 MiB of hashing memory per process.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP Password Storage Cheat Sheet: argon2id equivalents of its minimum (memory KiB, time).
OWASP_MINIMUMS: tuple[tuple[int, int], ...] = (
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
)


@dataclass(frozen=True)
class PasswordParams:
    """argon2id cost parameters; `memory_kib` is in KiB as argon2 counts it."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4
    hash_len: int = 32
    salt_len: int = 16

    def meets_owasp_minimum(self) -> bool:
        return any(
            self.memory_kib >= memory and self.time_cost >= time for memory, time in OWASP_MINIMUMS
        )


RFC9106_LOW_MEMORY = PasswordParams()


class PasswordHasher:
    """`await hash(pw)`, `await verify(stored_or_None, pw)`, `needs_rehash(stored)`.

    At most `max_concurrency` hashes run at once per event loop: argon2 is CPU- and
    memory-heavy, and an unbounded burst of logins would exhaust both.
    """

    def __init__(self, params: PasswordParams = RFC9106_LOW_MEMORY, *, max_concurrency: int = 2):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.params = params
        self._hasher = _Argon2Hasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=params.hash_len,
            salt_len=params.salt_len,
            type=Type.ID,
        )
        self._max_concurrency = max_concurrency
        # asyncio primitives belong to one loop; the embedded runner and tests may use several.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()
        self._dummy_hash: str | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self._max_concurrency)
        return semaphore

    async def hash(self, password: str) -> str:
        async with self._semaphore():
            return await asyncio.to_thread(self._hasher.hash, _encode(password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches `stored_hash`. With `None` (unknown user, or a user who
        must not log in) a dummy hash of the same parameters is verified and False returned, so
        the caller's response time does not reveal which case it was."""
        if stored_hash is None:
            await self._verify(await self._dummy(), password)
            return False
        return await self._verify(stored_hash, password)

    async def _verify(self, stored_hash: str, password: str) -> bool:
        async with self._semaphore():
            return await asyncio.to_thread(self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, _encode(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("kubeserve-dummy-password-for-unknown-users")
        return self._dummy_hash

    async def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown-user login costs no more than others."""
        await self._dummy()

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when `stored_hash` was made with other parameters (or is not argon2id)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True


def _encode(password: str) -> bytes:
    # UTF-8, but total: a lone surrogate (valid in a Python str, e.g. from json.loads) must not
    # turn a login into a server error.
    return password.encode("utf-8", "surrogatepass")
