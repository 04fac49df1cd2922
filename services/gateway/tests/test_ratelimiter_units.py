"""The limiter's lease logic against an in-memory store (pure units, injected clock): leases
cut store calls, concurrent misses share one call, leftovers go back, a refusal is remembered,
a failing store falls back to local buckets and is left alone for a while."""

from __future__ import annotations

import asyncio

from kubeserve_gateway.domain.ratelimit import Decision, Limit, MemoryBuckets, tighter
from kubeserve_gateway.services.ratelimiter import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A bucket store in memory that counts its calls and can be made to fail."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tokens: dict[str, tuple[float, float]] = {}
        self.calls = 0
        self.given_back = 0
        self.failing = False

    async def take(self, key: str, limit: Limit, want: int, give_back: int) -> tuple[int, float]:
        self.calls += 1
        await asyncio.sleep(0)  # a real round trip yields
        if self.failing:
            raise ConnectionError("store down")
        self.given_back += give_back
        tokens, updated = self.tokens.get(key, (float(limit.burst), self.clock.now))
        tokens = min(limit.burst, tokens + (self.clock.now - updated) * limit.rate + give_back)
        granted = min(want, int(tokens))
        self.tokens[key] = (tokens - granted, self.clock.now)
        return granted, tokens - granted

    async def prune(self, idle_seconds: float) -> int:
        return 0


def limiter(store: CountingStore, clock: Clock) -> RateLimiter:
    return RateLimiter(store, lease_seconds=0.05, lease_burst_fraction=0.05, clock=clock)


async def test_a_lease_serves_many_requests_with_one_store_call() -> None:
    clock = Clock()
    store = CountingStore(clock)
    rl = limiter(store, clock)
    limit = Limit(1000, 2000)  # leases of 50
    decisions = [await rl.hit("k", limit) for _ in range(120)]
    assert all(d.allowed for d in decisions)
    assert store.calls == 3
    assert decisions[-1].remaining == 2000 - 120


async def test_concurrent_misses_share_one_store_call() -> None:
    clock = Clock()
    store = CountingStore(clock)
    rl = limiter(store, clock)
    decisions = await asyncio.gather(*(rl.hit("k", Limit(1000, 2000)) for _ in range(40)))
    assert all(d.allowed for d in decisions) and store.calls == 1


async def test_an_expired_leases_leftovers_go_back_to_the_store() -> None:
    clock = Clock()
    store = CountingStore(clock)
    rl = limiter(store, clock)
    await rl.hit("k", Limit(1000, 2000))  # takes 50, uses 1
    clock.now += 2  # past the lease's one-second life
    await rl.hit("k", Limit(1000, 2000))
    assert store.given_back == 49


async def test_a_refusal_is_remembered_until_the_next_token_is_due() -> None:
    clock = Clock()
    store = CountingStore(clock)
    rl = limiter(store, clock)
    limit = Limit(2, 1)
    assert (await rl.hit("k", limit)).allowed
    refused = await rl.hit("k", limit)
    assert not refused.allowed and refused.retry_after == 0.5
    calls = store.calls
    for _ in range(100):
        assert not (await rl.hit("k", limit)).allowed
    assert store.calls == calls  # a throttled flood does not reach the store
    clock.now += 0.5
    assert (await rl.hit("k", limit)).allowed


async def test_a_failing_store_falls_back_to_local_buckets_and_is_retried_later() -> None:
    clock = Clock()
    store = CountingStore(clock)
    store.failing = True
    rl = limiter(store, clock)
    limit = Limit(0.001, 2)
    assert [(await rl.hit("k", limit)).allowed for _ in range(3)] == [True, True, False]
    assert store.calls == 1  # then left alone for a while
    clock.now += 10
    store.failing = False
    assert (await rl.hit("other", limit)).allowed
    assert store.calls == 2


def test_headers_follow_the_draft_and_the_tighter_bucket_wins() -> None:
    buckets = MemoryBuckets(clock=Clock())
    first = buckets.hit("a", Limit(1, 10))
    assert first.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "9",
        "RateLimit-Reset": "1",
    }
    # What an allowed answer carries: the same three, as raw headers.
    assert [(k.decode(), v.decode()) for k, v in first.raw_headers()] == [
        (name.lower(), value) for name, value in first.headers().items()
    ]
    tight = Decision(True, 4, 1, 3.0)
    assert tighter(first, tight) is tight and tighter(tight, first) is tight
    buckets.hit("b", Limit(1, 1))
    refused = buckets.hit("b", Limit(1, 1))
    headers = refused.headers()
    assert headers["Retry-After"] == "1" and headers["RateLimit-Remaining"] == "0"


def test_lease_sizes() -> None:
    assert Limit(1000, 2000).lease_size(0.05, 0.05) == 50
    assert Limit(5, 10).lease_size(0.05, 0.05) == 1  # small limits stay exact
    assert Limit(100_000, 100).lease_size(0.05, 0.05) == 5  # never much of the burst
