"""Per-account exponential backoff after failed logins (pure arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BackoffPolicy:
    """After `threshold` consecutive failures the account is locked for `base` seconds, doubling
    with each further failure up to `maximum`. A success resets the count."""

    threshold: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 900.0

    def lock_for(self, failures: int) -> timedelta | None:
        if failures < self.threshold:
            return None
        exponent = min(failures - self.threshold, 30)
        return timedelta(seconds=min(self.base_seconds * 2**exponent, self.max_seconds))

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        lock = self.lock_for(failures)
        return now + lock if lock else None

    def forget_after(self) -> timedelta:
        """Failure records idle this long are stale (and may be pruned)."""
        return timedelta(seconds=max(self.max_seconds * 2, 3600))
