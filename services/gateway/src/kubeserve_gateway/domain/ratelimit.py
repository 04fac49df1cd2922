"""Token-bucket rate limiting, pure logic: limits, decisions (with the IETF `RateLimit-*`
headers), an in-memory bucket set with an injectable clock, bounded in size, and the local
lease a gateway holds on a bucket shared through a store (services/ratelimiter.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeserve_common.caching import Lru


@dataclass(frozen=True)
class Limit:
    """`rate` tokens per second refill, up to `burst` tokens; a request costs one."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError("rate must be > 0 and burst >= 1")

    def seconds_to_full(self, tokens: float) -> float:
        return max(0.0, (self.burst - tokens) / self.rate)

    def lease_size(self, lease_seconds: float, burst_fraction: float) -> int:
        """Tokens a gateway takes from a shared bucket at once: what this limit refills in
        `lease_seconds`, at most `burst_fraction` of the burst, at least one. Small enough
        that a lease other replicas cannot use costs little; large enough that a busy key
        costs about one store round trip per `lease_seconds`, not one per request."""
        by_rate = math.ceil(self.rate * lease_seconds)
        by_burst = math.floor(self.burst * burst_fraction)
        return max(1, min(by_rate, by_burst))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int = 0  # the bucket's burst ("RateLimit-Limit")
    remaining: int = 0  # whole tokens left after this request
    reset: float = 0.0  # seconds until the bucket is full again
    retry_after: float = 0.0  # seconds until one token is available again (when refused)

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))

    def headers(self) -> dict[str, str]:
        """The draft IETF headers (draft-ietf-httpapi-ratelimit-headers, the three-field form):
        the bucket's size, what is left of it and when it is full again; `Retry-After` too
        when refused."""
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            values["Retry-After"] = self.retry_after_header
        return values

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` of an allowed request as raw response headers: added to every proxied
        answer, predictions included, so built straight as bytes."""
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % max(0, self.remaining)),
            (b"ratelimit-reset", b"%d" % math.ceil(self.reset)),
        ]


def tighter(a: Decision | None, b: Decision) -> Decision:
    """Of two allowed decisions on one request, the one a client should pace itself by: the
    bucket with the smaller share left."""
    if a is None:
        return b
    return b if b.remaining / max(1, b.limit) < a.remaining / max(1, a.limit) else a


@dataclass
class _Bucket:
    tokens: float
    updated: float


class MemoryBuckets:
    """One bucket per key, in this process. The least recently used buckets are dropped
    beyond `max_keys` - a dropped bucket comes back full, which only errs towards allowing,
    and keeps memory bounded under a flood of distinct keys."""

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: Lru[str, _Bucket] = Lru(max_keys)

    def hit(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), now)
            self._buckets.put(key, bucket)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return Decision(
                True, limit.burst, math.floor(bucket.tokens), limit.seconds_to_full(bucket.tokens)
            )
        return Decision(
            False,
            limit.burst,
            0,
            limit.seconds_to_full(bucket.tokens),
            (cost - bucket.tokens) / limit.rate,
        )

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class Lease:
    """Tokens this gateway took from a shared bucket and may hand out without asking the store
    again, until `expires`. `store_tokens` is what the store had left when last asked (for the
    `RateLimit-Remaining` estimate); `empty_until` remembers a refusal so a throttled flood
    does not ask the store on every request either."""

    tokens: int = 0
    expires: float = 0.0
    store_tokens: float = 0.0
    empty_until: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens > 0 and now < self.expires:
            self.tokens -= 1
            return True
        return False

    def unused(self, now: float) -> int:
        """Tokens to give back when asking for a new lease: an expired lease's leftovers."""
        return self.tokens if now >= self.expires else 0

    def decision(self, limit: Limit, now: float) -> Decision:
        left = self.tokens + self.store_tokens
        return Decision(True, limit.burst, math.floor(left), limit.seconds_to_full(left))
