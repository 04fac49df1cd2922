"""The gateway's rate limiter: token buckets in this process (embedded mode, one gateway) or
shared by every gateway replica through a store (PostgreSQL when distributed). With a store,
each gateway leases a few tokens at a time (see `Limit.lease_size`), so a busy key costs
about one store round trip per lease, not one per request; a refusal is remembered until the
next token is due. When the store fails the limiter falls back to its local buckets (the data
plane keeps serving; each replica then limits on its own) and says so in a metric and a log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kubeserve_common.caching import Lru

from kubeserve_gateway.domain.ratelimit import Decision, Lease, Limit, MemoryBuckets
from kubeserve_gateway.metrics import RATE_LIMIT_STORE_CALLS

log = logging.getLogger(__name__)

_FAILURE_LOG_INTERVAL = 30.0  # seconds between two warnings about a failing store
_PRUNE_INTERVAL = 600.0  # seconds between two deletions of long-idle buckets
# After a failed store call, requests use the local buckets for this long before the store is
# tried again: a hanging database must not add its timeout to every request.
_STORE_RETRY_AFTER = 5.0


class BucketStore(Protocol):
    """Token buckets every gateway replica sees alike, updated atomically."""

    async def take(self, key: str, limit: Limit, want: int, give_back: int) -> tuple[int, float]:
        """Refill the bucket `key` by the time elapsed (by the store's clock), add
        `give_back` unused tokens, then take up to `want` whole tokens. Returns the tokens
        granted (0 when the bucket is empty) and the tokens left after that."""
        ...

    async def prune(self, idle_seconds: float) -> int:
        """Forget buckets untouched for `idle_seconds` (they would be full anyway)."""
        ...


@dataclass
class _Entry:
    lease: Lease = field(default_factory=Lease)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    def __init__(
        self,
        store: BucketStore | None = None,
        *,
        lease_seconds: float = 0.05,
        lease_burst_fraction: float = 0.05,
        lease_ttl: float = 1.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.lease_burst_fraction = lease_burst_fraction
        self.lease_ttl = lease_ttl
        self.max_keys = max_keys
        self._clock = clock
        self.local = MemoryBuckets(max_keys=max_keys, clock=clock)
        self._entries: Lru[str, _Entry] = Lru(max_keys)
        self._failure_logged = -_FAILURE_LOG_INTERVAL
        self._store_down_until = -1.0
        self._pruned_at = clock()
        self._prune_task: asyncio.Task[None] | None = None

    @property
    def shared(self) -> bool:
        return self.store is not None

    async def hit(self, key: str, limit: Limit) -> Decision:
        if self.store is None:
            return self.local.hit(key, limit)
        entry = self._entry(key)
        lease = entry.lease
        now = self._clock()
        if lease.take(now):
            return lease.decision(limit, now)
        if now < lease.empty_until:
            return _refused(limit, lease.store_tokens, lease.empty_until - now)
        async with entry.lock:
            # Another request may have renewed the lease while this one waited.
            now = self._clock()
            if lease.take(now):
                return lease.decision(limit, now)
            if now < lease.empty_until:
                return _refused(limit, lease.store_tokens, lease.empty_until - now)
            return await self._renew(key, limit, lease, now)

    async def _renew(self, key: str, limit: Limit, lease: Lease, now: float) -> Decision:
        assert self.store is not None
        if now < self._store_down_until:
            return self.local.hit(key, limit)
        give_back = lease.unused(now)
        lease.tokens = 0
        want = limit.lease_size(self.lease_seconds, self.lease_burst_fraction)
        try:
            granted, left = await self.store.take(key, limit, want, give_back)
            RATE_LIMIT_STORE_CALLS.labels("ok").inc()
        except Exception as exc:
            RATE_LIMIT_STORE_CALLS.labels("failed").inc()
            self._store_down_until = self._clock() + _STORE_RETRY_AFTER
            if now - self._failure_logged >= _FAILURE_LOG_INTERVAL:
                self._failure_logged = now
                log.warning(
                    "rate-limit store failed; limiting in this process until it is back",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
            return self.local.hit(key, limit)
        self._maybe_prune(now)
        lease.store_tokens = left
        if granted <= 0:
            wait = max(0.0, (1.0 - left) / limit.rate)
            lease.empty_until = now + wait
            return _refused(limit, left, wait)
        lease.tokens = granted - 1
        lease.expires = now + self.lease_ttl
        return lease.decision(limit, now)

    def _entry(self, key: str) -> _Entry:
        return self._entries.get_or_put(key, _Entry)

    def _maybe_prune(self, now: float) -> None:
        if now - self._pruned_at < _PRUNE_INTERVAL or self.store is None:
            return
        self._pruned_at = now
        store = self.store

        async def prune() -> None:
            try:
                await store.prune(_PRUNE_INTERVAL)
            except Exception as exc:
                log.info("pruning idle rate-limit buckets failed", extra={"error": str(exc)})

        self._prune_task = asyncio.get_running_loop().create_task(prune())


def _refused(limit: Limit, tokens: float, wait: float) -> Decision:
    return Decision(False, limit.burst, 0, limit.seconds_to_full(tokens), wait)
