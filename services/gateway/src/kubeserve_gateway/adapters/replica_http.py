"""A small pooled HTTP/1.1 client for the prediction hop (gateway -> model replica).

Why not httpx here: a proxied prediction is a tiny, already-buffered request and a small
response, and httpx + httpcore cost more CPU per call than the rest of the gateway together
(request model, cookie jar, anyio streams, h11 state machine, lock and event objects per call;
py-spy under `bench/bench_predict_gateway.py`). This client writes the request in one
`transport.write`, parses the answer with httptools (the C parser uvicorn already uses) in an
`asyncio.Protocol`, and keeps idle keep-alive connections per replica. It only does what the
prediction hop needs: a buffered request body, a streamed or one-piece response, connect / read
/ pool timeouts. Internal services keep the httpx client (streamed uploads, redirects off...).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools
from kubeserve_common.caching import Lru

from kubeserve_gateway.domain.errors import (
    BadGateway,
    UpstreamDropped,
    UpstreamTimeout,
    UpstreamUnavailable,
)

RawHeaders = list[tuple[bytes, bytes]]

_HIGH_WATER = 1024 * 1024  # buffered response bytes before we stop reading the socket
_LOW_WATER = 256 * 1024
_BODYLESS = frozenset({b"content-length", b"transfer-encoding", b"host"})


class ReplicaConnectError(Exception):
    """The replica could not be reached (refused, unreachable, connect timeout): nothing was
    sent, so another replica may be tried."""


class ReplicaProtocolError(Exception):
    """The replica closed the connection or sent something that is not HTTP."""


class ReplicaReadTimeout(Exception):
    pass


class ReplicaDropped(ReplicaProtocolError):
    """The replica closed a fresh connection before sending any byte of an answer (it died,
    or was stopped, with our request in flight)."""


class _Unanswered(Exception):
    def __init__(self, reused: bool) -> None:
        self.reused = reused


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, int]) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.busy = False  # a request is in flight
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: RawHeaders = []
        self.headers_done = False
        self.complete = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.keep_alive = False
        self.head = False  # a HEAD request: the answer has no body whatever it declares
        self.answered = False  # some byte of an answer arrived
        self.until_close = False  # the body ends with the connection (no length, not chunked)

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop too)

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            # Bytes on an idle keep-alive connection: nothing we asked for; never reuse it.
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ReplicaProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ReplicaProtocolError(f"invalid response: {exc}"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and self.until_close and exc is None and self.error is None:
            self.complete = True  # the end of a response delimited by the connection's end
            self._wake()
        elif not self.complete:
            self._fail(ReplicaProtocolError("the replica closed the connection"))

    # -- httptools callbacks -------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        if self.head:
            # llhttp does not know the request was HEAD and would wait for the declared body.
            self.complete, self.keep_alive = True, False
        else:
            names = {name for name, _ in self.headers}
            self.until_close = (
                b"content-length" not in names
                and b"transfer-encoding" not in names
                and self.status >= 200
                and self.status not in (204, 304)
            )
            if self.until_close:
                self.keep_alive = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- helpers -------------------------------------------------------------------------------
    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, seconds: float) -> None:
        """Until the parser made progress (or failed); ReplicaReadTimeout after `seconds`. A
        bare timer handle: cheaper than asyncio.timeout() on this per-request path."""
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(ReplicaReadTimeout())


class ReplicaResponse:
    """Status, raw headers (names lower-cased) and the body, streamed or read at once."""

    def __init__(self, pool: ReplicaPool, conn: _Connection, read_timeout: float) -> None:
        self.pool = pool
        self.conn = conn
        self.read_timeout = read_timeout
        self.status = conn.status
        self.headers = conn.headers
        self._done = False

    async def read(self) -> bytes:
        """The whole body (what `stream` yields, without an async generator per call)."""
        conn = self.conn
        parts: list[bytes] = []
        try:
            while True:
                if conn.chunks:
                    parts.extend(conn.chunks)
                    conn.chunks.clear()
                    conn.buffered = 0
                    if conn.paused and conn.transport is not None:
                        conn.paused = False
                        conn.transport.resume_reading()
                if conn.complete:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self.read_timeout)
        finally:
            await self.close()
        return b"".join(parts)

    async def stream(self) -> AsyncIterator[bytes]:
        conn = self.conn
        try:
            while True:
                while conn.chunks:
                    chunk = conn.chunks.popleft()
                    conn.buffered -= len(chunk)
                    if conn.paused and conn.buffered < _LOW_WATER and conn.transport is not None:
                        conn.paused = False
                        conn.transport.resume_reading()
                    yield chunk
                if conn.complete:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self.read_timeout)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        conn = self.conn
        if conn.complete and conn.keep_alive and conn.error is None and not conn.closed:
            self.pool.release(conn)
        else:
            conn.abort()
            self.pool.discard(conn)


class ReplicaPool:
    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_timeout: float,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float = 4.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_timeout = pool_timeout
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._idle_count = 0
        # url -> ((host, port), request target, Host header), bounded like every cache.
        self._targets: Lru[str, tuple[tuple[str, int], bytes, bytes]] = Lru(10_000)

    def _target(self, url: str) -> tuple[tuple[str, int], bytes, bytes]:
        """(host, port), the request target and the Host header of a replica URL (cached)."""
        cached = self._targets.get(url)
        if cached is not None:
            return cached
        if url.startswith("unix:"):
            key, target = _unix_target(url)
            cached = (key, target, b"localhost")
        else:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise ReplicaConnectError(f"unsupported replica URL: {url[:200]}")
            key = (parts.hostname, parts.port or 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.hostname if key[1] == 80 else f"{parts.hostname}:{key[1]}"
            cached = (key, path.encode("latin-1"), host.encode("latin-1"))
        self._targets.put(url, cached)
        return cached

    async def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> ReplicaResponse:
        key, target, host = self._target(url)
        head = [method.encode("latin-1"), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
        for name, value in headers:
            encoded = name.encode("latin-1")
            if encoded in _BODYLESS:
                continue
            head += (encoded, b": ", value.encode("latin-1"), b"\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += (b"content-length: ", str(len(body or b"")).encode(), b"\r\n")
        head.append(b"\r\n")
        if body:
            head.append(body)
        payload = b"".join(head)

        # A reused keep-alive connection the replica closed just as we wrote is retried once on
        # a fresh connection; a fresh one dropped before any answer is ReplicaDropped, which
        # the gateway retries once on another replica (predictions are idempotent by contract).
        for reuse in (True, False):
            try:
                return await self._exchange(key, payload, method, reuse=reuse)
            except _Unanswered as unanswered:
                if unanswered.reused:
                    continue
                raise ReplicaDropped(
                    f"{key[0]}:{key[1]} closed the connection before answering"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _exchange(
        self, key: tuple[str, int], payload: bytes, method: str, *, reuse: bool
    ) -> ReplicaResponse:
        await self._acquire_slot()
        reused = False
        try:
            conn = self._idle_connection(key) if reuse else None
            reused = conn is not None
            conn = conn or await self._connect(key)
            conn.head = method == "HEAD"
            conn.busy = True
            assert conn.transport is not None
            conn.transport.write(payload)
            while not conn.headers_done:
                if conn.error is not None:
                    if isinstance(conn.error, ReplicaProtocolError) and not conn.answered:
                        raise _Unanswered(reused)
                    raise conn.error
                await conn.wait(self.read_timeout)
        except BaseException:
            self._slots.release()
            if "conn" in locals() and conn is not None:
                conn.abort()
            raise
        return ReplicaResponse(self, conn, self.read_timeout)

    async def _acquire_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.pool_timeout)
        except TimeoutError:
            raise ReplicaConnectError("no free connection to the replicas") from None

    def _idle_connection(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                conn._reset()
                return conn
            conn.abort()
        return None

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if key[0].startswith(_UNIX):
                    _, conn = await loop.create_unix_connection(
                        lambda: _Connection(loop, key), key[0].removeprefix(_UNIX)
                    )
                else:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop, key), key[0], key[1]
                    )
        except (OSError, TimeoutError) as exc:
            raise ReplicaConnectError(f"cannot connect to {key[0]}:{key[1]}: {exc}") from None
        return conn

    def release(self, conn: _Connection) -> None:
        self._slots.release()
        conn.busy = False
        if self._idle_count >= self.max_keepalive:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1

    def discard(self, conn: _Connection) -> None:
        self._slots.release()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
        self._idle_count = 0


_UNIX = "unix:"


def _unix_target(url: str) -> tuple[tuple[str, int], bytes]:
    """`unix:/dir/replica.sock/predict?x=1` -> (("unix:/dir/replica.sock", 0), b"/predict?x=1").
    A contained local replica serves on a Unix socket (no network): its endpoint is the socket's
    path, which ends in `.sock`, and the request path follows it."""
    path, sep, rest = url.partition(".sock")
    if not sep or (rest and rest[0] not in "/?"):
        raise ReplicaConnectError(f"unsupported replica URL: {url[:200]}")
    target = rest if rest.startswith("/") else "/" + rest
    return (path + sep, 0), target.encode("latin-1")


def translate(exc: Exception, upstream: str) -> Exception:
    """The gateway error for a failed replica call (the same ones the httpx path raises)."""
    if isinstance(exc, ReplicaDropped):
        return UpstreamDropped(f"the {upstream} replica went away before answering; retry")
    if isinstance(exc, ReplicaConnectError):
        return UpstreamUnavailable(f"the {upstream} service is unavailable; try again shortly")
    if isinstance(exc, ReplicaReadTimeout):
        return UpstreamTimeout(f"the {upstream} service did not answer in time")
    return BadGateway(f"the {upstream} service returned an invalid response")
