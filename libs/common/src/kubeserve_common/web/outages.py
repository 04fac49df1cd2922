"""Dependency loss is a 503, not a 500: which dependency an unexpected exception says is away
(database, broker, object store, another service), and one log line per outage instead of a
traceback per request - or per pass of a background loop (`log_loop_failure`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

from prometheus_client import Counter

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2

DEPENDENCY_UNAVAILABLE = Counter(
    "kubeserve_dependency_unavailable_total",
    "Requests answered 503 because a dependency was unreachable.",
    ["service", "dependency"],
)


@dataclass(frozen=True)
class Outage:
    dependency: str  # "database" | "broker" | "storage" | "upstream"
    code: str
    message: str


OUTAGES = {
    "database": Outage(
        "database", "database_unavailable", "the database is unavailable; try again shortly"
    ),
    "broker": Outage(
        "broker", "broker_unavailable", "the message broker is unavailable; try again shortly"
    ),
    "storage": Outage(
        "storage", "storage_unavailable", "the object store is unavailable; try again shortly"
    ),
    "upstream": Outage(
        "upstream", "upstream_unavailable", "a service this one needs is unavailable; try again"
    ),
}

# Top-level package of an exception's class or of the code that raised it -> dependency.
_PACKAGES = {
    "asyncpg": "database",
    "sqlalchemy": "database",
    "aiosqlite": "database",
    "sqlite3": "database",
    "aiormq": "broker",
    "aio_pika": "broker",
    "pamqp": "broker",
    "botocore": "storage",
    "aiobotocore": "storage",
    "boto3": "storage",
    "aioboto3": "storage",
    # aiohttp's errors reach here from kubernetes_asyncio (the deployer's cluster API); the S3
    # client (aiobotocore) turns its aiohttp errors into botocore ones.
    "aiohttp": "upstream",
    "kubernetes_asyncio": "upstream",
    "httpx": "upstream",
    "httpcore": "upstream",
}

# Exception classes (matched by name anywhere in the MRO, so no driver needs importing) that
# mean "could not talk to it", as opposed to "it answered no" (an IntegrityError is a bug or a
# conflict, never an outage). Not the DB-API's OperationalError / InterfaceError by name: SQLite
# raises OperationalError for "no such table" and syntax errors too, asyncpg InterfaceError for
# a wrong argument count - bugs, which stay a 500 with a traceback. A lost PostgreSQL
# connection is recognised by SQLAlchemy (`connection_invalidated`) or by asyncpg's own
# classes below; SQLite's outages by their result code (`_SQLITE_OUTAGES`).
_CONNECTIVITY = frozenset(
    {
        # asyncpg / SQLAlchemy
        "DisconnectionError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "AdminShutdown",
        "CrashShutdown",
        "ConnectionFailureError",
        # aiormq / aio-pika
        "AMQPConnectionError",
        "ConnectionChannelError",
        "ChannelInvalidStateError",
        "ChannelClosed",
        "ConnectionClosed",
        # botocore
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        # httpx
        "TransportError",
    }
)

# The broker closing a channel because it refused the command (a missing queue, a queue
# declared with other arguments, no permission): an answer, not an outage.
_REFUSALS = frozenset(
    {
        "ChannelNotFoundEntity",
        "ChannelPreconditionFailed",
        "ChannelAccessRefused",
        "DuplicateConsumerTag",
    }
)

# SQLite result codes (`sqlite3.Error.sqlite_errorname`, extended codes share the prefix) of a
# database that cannot be used right now: busy or locked past the busy timeout, the file
# missing or unreadable, the disk failing or full.
_SQLITE_OUTAGES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")


def classify(exc: BaseException) -> Outage | None:
    """The outage `exc` (or an exception it was raised from or during) reports, if any."""
    for error in _chain(exc):
        if not _is_connectivity(error):
            continue
        dependency = _package_dependency(type(error).__module__) or _raised_in(error.__traceback__)
        if dependency is not None:
            return OUTAGES[dependency]
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connectivity(error: BaseException) -> bool:
    sqlite_code = getattr(error, "sqlite_errorname", None)
    if isinstance(sqlite_code, str):
        return sqlite_code.startswith(_SQLITE_OUTAGES)
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _REFUSALS:
        return False
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    if isinstance(error, OSError) and error.errno is not None:
        return True  # refused, unreachable, reset...
    if getattr(error, "connection_invalidated", False):  # SQLAlchemy DBAPIError
        return True
    if "TimeoutError" in names and type(error).__module__.startswith("sqlalchemy"):
        return True  # the connection pool's "QueuePool limit ... timed out"
    return bool(names & _CONNECTIVITY)


def _package_dependency(module: str) -> str | None:
    return _PACKAGES.get(module.partition(".")[0])


def _raised_in(tb: TracebackType | None) -> str | None:
    """The dependency whose client code raised it: the innermost frame of a known package (a
    bare ConnectionError from asyncpg carries no other hint)."""
    found = None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        dependency = _package_dependency(str(module))
        if dependency is not None:
            found = dependency
        tb = tb.tb_next
    return found


class OutageLog:
    """Logs the first failure of an outage (one warning) and counts the rest; an outage ends
    after `quiet` seconds without a failure, and the next one is logged again."""

    def __init__(self, quiet: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def note(self, service: str, outage: Outage, exc: BaseException) -> bool:
        """Record one failure; True when it was logged (the first of its outage)."""
        DEPENDENCY_UNAVAILABLE.labels(service, outage.dependency).inc()
        first, before = self.first_of_outage(outage.dependency)
        if not first:
            return False
        log.warning(
            "%s unavailable: answering 503 until it is back (%s: %s)",
            outage.dependency,
            type(exc).__name__,
            str(exc)[:200],
            extra={"dependency": outage.dependency, "previous_outage_suppressed": before},
        )
        return True

    def first_of_outage(self, key: str) -> tuple[bool, int]:
        """Record one failure under `key`: (whether it starts an outage, how many failures the
        previous outage under `key` had beyond its first)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            self._last[key] = now
            if last is not None and now - last < self.quiet:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False, 0
            return True, self._suppressed.pop(key, 0)


OUTAGE_LOG = OutageLog()
LOOP_OUTAGE_LOG = OutageLog()


def log_loop_failure(
    logger: logging.Logger,
    what: str,
    exc: BaseException,
    *,
    level: int = logging.ERROR,
    outages: OutageLog | None = None,
) -> None:
    """A background loop's failed pass (`what`, e.g. "reconcile pass failed"). A failure that
    says a dependency is away is one warning per outage and loop, without a traceback (it is no
    bug, and a loop retrying every second would write one per pass); anything else is logged
    at `level` with its traceback."""
    outage = classify(exc)
    if outage is None:
        logger.log(level, what, exc_info=exc)
        return
    first, before = (outages or LOOP_OUTAGE_LOG).first_of_outage(
        f"{logger.name}:{what}:{outage.dependency}"
    )
    if first:
        logger.warning(
            "%s: %s unavailable, retrying until it is back (%s: %s)",
            what,
            outage.dependency,
            type(exc).__name__,
            str(exc)[:200],
            extra={"dependency": outage.dependency, "previous_outage_suppressed": before},
        )
