"""argon2id password hashing: verification, dummy work for unknown users, rehash detection and
bounded concurrency off the event loop."""

from __future__ import annotations

import asyncio
import threading

from kubeserve_common.security.passwords import (
    RFC9106_LOW_MEMORY,
    PasswordHasher,
    PasswordParams,
)

CHEAP = PasswordParams(time_cost=1, memory_kib=1024, parallelism=1)


async def test_hash_and_verify() -> None:
    hasher = PasswordHasher(CHEAP)
    stored = await hasher.hash("s3cret-Passphrase")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify(stored, "s3cret-Passphrase")
    assert not await hasher.verify(stored, "s3cret-passphrase")
    assert not await hasher.verify("not a hash", "s3cret-Passphrase")
    assert not await hasher.verify(stored, "x" * 10_000)


async def test_unknown_users_verify_a_dummy_hash_and_fail() -> None:
    hasher = PasswordHasher(CHEAP)
    calls: list[str] = []
    original = hasher._verify_sync

    def spy(stored: str, password: str) -> bool:
        calls.append(stored)
        return original(stored, password)

    hasher._verify_sync = spy  # type: ignore[method-assign]
    assert not await hasher.verify(None, "kubeserve-dummy-password-for-unknown-users")
    # The same argon2 work as for a real account was done, with the configured parameters.
    assert len(calls) == 1 and calls[0].startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_parameter_changes_ask_for_a_rehash() -> None:
    old, new = PasswordHasher(CHEAP), PasswordHasher(PasswordParams(2, 2048, 1))
    stored = await old.hash("s3cret-Passphrase")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)
    assert await new.verify(stored, "s3cret-Passphrase"), "old hashes keep verifying"
    assert new.needs_rehash("$2b$12$bcrypt-or-garbage")


def test_defaults_are_rfc9106_low_memory_and_above_owasp() -> None:
    assert (RFC9106_LOW_MEMORY.time_cost, RFC9106_LOW_MEMORY.memory_kib) == (3, 65536)
    assert RFC9106_LOW_MEMORY.parallelism == 4
    assert RFC9106_LOW_MEMORY.meets_owasp_minimum()
    assert PasswordParams(time_cost=2, memory_kib=19_456, parallelism=1).meets_owasp_minimum()
    assert not CHEAP.meets_owasp_minimum()


async def test_hashing_runs_off_the_loop_with_bounded_concurrency() -> None:
    hasher = PasswordHasher(CHEAP, max_concurrency=2)
    loop_thread = threading.get_ident()
    running = 0
    peak = 0
    threads: set[int] = set()
    lock = threading.Lock()
    original = hasher._verify_sync

    def slow(stored: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            threads.add(threading.get_ident())
        try:
            return original(stored, password)
        finally:
            with lock:
                running -= 1

    hasher._verify_sync = slow  # type: ignore[method-assign]
    stored = await hasher.hash("s3cret-Passphrase")
    results = await asyncio.gather(*(hasher.verify(stored, "s3cret-Passphrase") for _ in range(8)))
    assert all(results)
    assert peak <= 2
    assert loop_thread not in threads


async def test_any_python_string_is_accepted() -> None:
    hasher = PasswordHasher(CHEAP)
    odd = "lone \ud800 surrogate and \x00 nul"
    stored = await hasher.hash(odd)
    assert await hasher.verify(stored, odd)
    assert not await hasher.verify(stored, "lone  surrogate and \x00 nul")
