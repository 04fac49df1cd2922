"""What a caller asks of a deployment's replica logs (`GET /deployments/{id}/logs`) and the
lines it gets back. Pure: parsing of `since`, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubeserve_common.errors import ValidationFailed

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_TAIL = 10_000


@dataclass(frozen=True)
class LogQuery:
    replica: int | None = None  # the replica's index (0, 1, ...); None: every replica
    since: datetime | None = None  # only lines written at or after this instant (UTC)
    follow: bool = False  # keep streaming new lines until the caller goes away
    tail: int | None = None  # at most this many of the last lines per replica, before following


@dataclass(frozen=True)
class LogLine:
    replica: int  # the replica's index
    text: str  # one line, without its line break
    pod: str | None = None  # the Kubernetes pod it came from (kubernetes backend)


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """`since` as kubectl takes it: a duration (`90s`, `10m`, `1h30m`) back from now, or an
    RFC 3339 / ISO 8601 instant (`2026-12-02T14:00:00Z`)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    found = _DURATION.fullmatch(text)
    if found and any(found.groups()):
        hours, minutes, seconds = (int(g or 0) for g in found.groups())
        try:
            back = timedelta(hours=hours, minutes=minutes, seconds=seconds)
            return (now or datetime.now(UTC)) - back
        except OverflowError:
            return None  # further back than a datetime reaches: every line there is
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"since={value!r}: give a duration such as 10m or 1h30m, or an instant such as "
            "2026-12-02T14:00:00Z"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
