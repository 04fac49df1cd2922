"""Fan-out of lifecycle events to the browsers connected to this gateway (server-sent events).
Each connection sees only events whose `tenantid` is its user; each has a bounded queue, and a
connection too slow to keep up is closed (the browser reconnects and refetches) rather than
letting it hold memory or slow the others."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from kubeserve_common.events.envelope import CloudEvent

log = logging.getLogger(__name__)

# Internal locations (storage URIs, replica addresses) stay inside the platform.
_PRIVATE_FIELDS = frozenset({"artifact_uri", "wheelhouse_uri", "report_uri", "endpoints"})


class TooManyConnections(Exception):
    pass


class ShuttingDown(Exception):
    pass


@dataclass(eq=False)
class Connection:
    user_id: str
    queue: asyncio.Queue[str | None]
    overflowed: bool = False
    closed: bool = field(default=False)


def browser_event(event: CloudEvent) -> str:
    """The JSON a browser receives for one event: the envelope minus internal locations."""
    data: dict[str, Any] = {k: v for k, v in event.data.items() if k not in _PRIVATE_FIELDS}
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat(),
            "data": data,
        },
        separators=(",", ":"),
    )


class EventHub:
    def __init__(
        self, *, queue_size: int = 256, max_per_user: int = 10, max_total: int = 5000
    ) -> None:
        self.queue_size = queue_size
        self.max_per_user = max_per_user
        self.max_total = max_total
        self._by_user: dict[str, set[Connection]] = {}
        self._total = 0
        self.closing = False

    @property
    def connections(self) -> int:
        return self._total

    def connect(self, user_id: str) -> Connection:
        if self.closing:
            raise ShuttingDown("the server is shutting down")
        mine = self._by_user.setdefault(user_id, set())
        if len(mine) >= self.max_per_user or self._total >= self.max_total:
            if not mine:
                del self._by_user[user_id]
            raise TooManyConnections("too many open event streams")
        conn = Connection(user_id, asyncio.Queue(maxsize=self.queue_size))
        mine.add(conn)
        self._total += 1
        return conn

    def disconnect(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        mine = self._by_user.get(conn.user_id)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self._by_user[conn.user_id]
        self._total -= 1

    def close_all(self) -> None:
        """End every stream (the server is stopping): an open stream would otherwise hold the
        server's graceful shutdown until its own timeout."""
        self.closing = True
        for conns in list(self._by_user.values()):
            for conn in list(conns):
                while not conn.queue.empty():
                    conn.queue.get_nowait()
                conn.queue.put_nowait(None)

    async def handle(self, event: CloudEvent) -> None:
        """The bus handler: never raises, never blocks."""
        if not event.tenantid:
            return
        listeners = self._by_user.get(str(event.tenantid))
        if not listeners:
            return
        message = browser_event(event)
        for conn in list(listeners):
            if conn.overflowed:
                continue
            try:
                conn.queue.put_nowait(message)
            except asyncio.QueueFull:
                # Drop the slowest: end its stream; it reconnects and reloads its state.
                conn.overflowed = True
                log.info("event stream too slow, closing it", extra={"tenant": conn.user_id})
                while not conn.queue.empty():
                    conn.queue.get_nowait()
                conn.queue.put_nowait(None)
