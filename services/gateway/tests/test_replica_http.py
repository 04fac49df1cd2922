"""The prediction hop's own HTTP/1.1 client (adapters/replica_http) against real sockets: small
servers written with asyncio streams, so each answer shape (content-length, chunked, delimited
by close, broken, silent, huge) is exactly what the test says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from kubeserve_gateway.adapters.http import UpstreamClient
from kubeserve_gateway.adapters.replica_http import (
    ReplicaConnectError,
    ReplicaPool,
    ReplicaProtocolError,
    ReplicaReadTimeout,
)
from kubeserve_gateway.domain.errors import (
    UpstreamDropped,
    UpstreamTimeout,
    UpstreamUnavailable,
)

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


class Server:
    """Serves `handler` for every request of every connection; records the raw requests and
    how many connections were opened."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                if not await self.handler(request, reader, writer):
                    break
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(listener)
        server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
        return server

    yield start
    for listener in servers:
        listener.close()


def pool(**overrides: float) -> ReplicaPool:
    values: dict[str, float] = {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "pool_timeout": 2.0,
        "max_connections": 10,
        "max_keepalive": 10,
    }
    values.update(overrides)
    return ReplicaPool(**values)  # type: ignore[arg-type]


def answer(body: bytes, extra: bytes = b"") -> Handler:
    async def handler(
        request: bytes, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + extra
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        return True

    return handler


async def test_request_is_one_well_formed_message_and_connections_are_reused(serve) -> None:
    server = await serve(answer(b'{"predictions": [0]}', b"X-Custom: a\r\nx-custom: b\r\n"))
    replicas = pool()
    for _ in range(3):
        response = await replicas.request(
            "POST",
            f"{server.url}/predict?x=1",
            [("content-type", "application/json"), ("content-length", "999"), ("x-a", "1")],
            b'{"instances": [[1]]}',
        )
        assert response.status == 200
        assert (b"x-custom", b"a") in response.headers and (b"x-custom", b"b") in response.headers
        assert await response.read() == b'{"predictions": [0]}'
    assert server.connections == 1  # keep-alive
    first = server.requests[0]
    assert first.startswith(b"POST /predict?x=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert first.count(b"content-length") == 1  # ours, from the real body length
    assert b"content-length: 20\r\n" in first and first.endswith(b'\r\n\r\n{"instances": [[1]]}')
    await replicas.aclose()


async def test_chunked_and_close_delimited_responses_stream_whole(serve) -> None:
    async def chunked(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b"ab", b"cde", b"f" * 100_000):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    async def until_close(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()
        return False

    replicas = pool()
    one, two = await serve(chunked), await serve(until_close)
    response = await replicas.request("GET", f"{one.url}/x", [], None)
    assert await response.read() == b"abcde" + b"f" * 100_000
    response = await replicas.request("GET", f"{one.url}/x", [], None)
    assert len(await response.read()) == 100_005
    assert one.connections == 1
    response = await replicas.request("GET", f"{two.url}/x", [], None)
    assert await response.read() == b"all of it"
    response = await replicas.request("GET", f"{two.url}/x", [], None)
    assert await response.read() == b"all of it"
    assert two.connections == 2  # not reused after `connection: close`


async def test_a_large_response_streams_with_backpressure(serve) -> None:
    size = 8 * 1024 * 1024
    server = await serve(answer(b"z" * size))
    replicas = pool()
    response = await replicas.request("GET", f"{server.url}/big", [], None)
    received = 0
    async for chunk in response.stream():
        received += len(chunk)
        await asyncio.sleep(0)
    assert received == size
    again = await replicas.request("GET", f"{server.url}/big", [], None)
    assert len(await again.read()) == size
    assert server.connections == 1


async def test_failures_are_typed(serve) -> None:
    async def hang_up(_: bytes, __: asyncio.StreamReader, ___: asyncio.StreamWriter) -> bool:
        return False

    async def garbage(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return True

    async def silent(_: bytes, __: asyncio.StreamReader, ___: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def half(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nonly this")
        await writer.drain()
        return False

    replicas = pool(read_timeout=0.3)
    with pytest.raises(ReplicaProtocolError):
        await replicas.request("POST", f"{(await serve(hang_up)).url}/p", [], b"{}")
    with pytest.raises(ReplicaProtocolError):
        await replicas.request("POST", f"{(await serve(garbage)).url}/p", [], b"{}")
    with pytest.raises(ReplicaReadTimeout):
        await replicas.request("POST", f"{(await serve(silent)).url}/p", [], b"{}")
    response = await replicas.request("GET", f"{(await serve(half)).url}/p", [], None)
    with pytest.raises(ReplicaProtocolError):
        await response.read()
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(ReplicaConnectError):
        await replicas.request("POST", f"http://127.0.0.1:{port}/p", [], b"{}")
    # Every failure gave its connection slot back.
    assert not replicas._slots.locked()
    assert replicas._slots._value == 10


async def test_upstream_client_maps_failures_to_gateway_errors(serve) -> None:
    import httpx

    async def silent(_: bytes, __: asyncio.StreamReader, ___: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def hang_up(_: bytes, __: asyncio.StreamReader, ___: asyncio.StreamWriter) -> bool:
        return False

    async with httpx.AsyncClient() as http:
        client = UpstreamClient(http, pool(read_timeout=0.3))
        with pytest.raises(UpstreamTimeout):
            await client.send_buffered("runtime", "POST", f"{(await serve(silent)).url}/", [], b"")
        # Dropped before any answer: retryable on another replica (predictions are idempotent).
        with pytest.raises(UpstreamDropped):
            await client.send_buffered("runtime", "POST", f"{(await serve(hang_up)).url}/", [], b"")
        with pytest.raises(UpstreamUnavailable):
            await client.send_buffered("runtime", "POST", "http://127.0.0.1:9/", [], b"")
        small = await client.send_buffered(
            "runtime", "POST", f"{(await serve(answer(b'ok'))).url}/", [], b"{}"
        )
        assert small.content == b"ok" and (b"content-length", b"2") in small.raw_headers
        big = await client.send_buffered(
            "runtime", "POST", f"{(await serve(answer(b'x' * 200_000))).url}/", [], b"{}"
        )
        assert big.content is None
        assert len(b"".join([c async for c in big.body])) == 200_000
        await big.close()
        await client.aclose()


async def test_idle_connections_expire_and_closed_ones_are_not_reused(serve) -> None:
    async def once(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return False  # the server closes right after answering, without saying so

    server = await serve(once)
    replicas = pool()
    for _ in range(3):
        response = await replicas.request("GET", f"{server.url}/", [], None)
        assert await response.read() == b"ok"
        await asyncio.sleep(0.05)  # lets the close arrive
    assert server.connections == 3
    kept = await serve(answer(b"ok"))
    replicas = pool()
    replicas.keepalive_expiry = 0.0
    for _ in range(2):
        assert await (await replicas.request("GET", f"{kept.url}/", [], None)).read() == b"ok"
    assert kept.connections == 2


async def test_a_head_answer_has_no_body_whatever_it_declares(serve) -> None:
    async def head(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n")
        await writer.drain()
        return True

    server = await serve(head)
    replicas = pool(read_timeout=1.0)
    response = await replicas.request("HEAD", f"{server.url}/v2/health/ready", [], None)
    assert response.status == 200 and await response.read() == b""
    assert b"content-length" not in server.requests[0]  # HEAD: no body, so no length


async def test_a_connection_that_talks_while_idle_is_not_reused(serve) -> None:
    async def chatty(_: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale")  # nobody asked
        await writer.drain()
        return True

    server = await serve(chatty)
    replicas = pool()
    assert await (await replicas.request("GET", f"{server.url}/", [], None)).read() == b"ok"
    await asyncio.sleep(0.2)
    assert await (await replicas.request("GET", f"{server.url}/", [], None)).read() == b"ok"
    assert server.connections == 2


async def test_a_streamed_answer_abandoned_midway_gives_its_slot_back(serve) -> None:
    import httpx

    server = await serve(answer(b"y" * 3_000_000))
    async with httpx.AsyncClient() as http:
        client = UpstreamClient(http, pool(max_connections=1))
        for _ in range(3):  # with one slot, a leaked one would block the next call
            response = await client.send_buffered("runtime", "GET", f"{server.url}/", [], None)
            assert response.content is None
            body = response.body
            await anext(body)
            await body.aclose()  # type: ignore[attr-defined]
        await client.aclose()


async def test_unix_socket_endpoints_are_dialled_and_pooled(tmp_path) -> None:
    """A contained local replica has no network: its endpoint is `unix:/path/replica.sock`."""
    server = Server(answer(b'{"predictions": [1]}'))
    socket_path = tmp_path / "r1" / "replica.sock"
    socket_path.parent.mkdir()
    listener = await asyncio.start_unix_server(server._serve, str(socket_path))
    replicas = pool()
    try:
        for query in ("", "?x=1"):
            response = await replicas.request(
                "POST", f"unix:{socket_path}/predict{query}", [], b'{"instances": [[1]]}'
            )
            assert response.status == 200
            assert await response.read() == b'{"predictions": [1]}'
        assert server.connections == 1  # one pooled keep-alive connection per socket
        assert server.requests[0].startswith(b"POST /predict HTTP/1.1\r\nhost: localhost\r\n")
        assert server.requests[1].startswith(b"POST /predict?x=1 HTTP/1.1\r\n")
        with pytest.raises(ReplicaConnectError):
            await replicas.request("GET", f"unix:{tmp_path}/gone.sock/v2/health/ready", [], None)
        with pytest.raises(ReplicaConnectError):
            await replicas.request("GET", f"unix:{tmp_path}/not-a-socket/predict", [], None)
    finally:
        await replicas.aclose()
        listener.close()


async def test_a_keep_alive_connection_closed_under_our_request_is_retried_fresh(serve) -> None:
    """The replica closes an idle keep-alive connection just as we reuse it: the request goes
    again on a new connection instead of failing."""
    answered: set[int] = set()

    async def once_per_connection(
        _: bytes, __: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if id(writer) in answered:
            return False  # closes without answering, as a replica shutting the socket does
        answered.add(id(writer))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return True

    server = await serve(once_per_connection)
    replicas = pool()
    for _ in range(3):
        response = await replicas.request("POST", f"{server.url}/p", [], b"{}")
        assert await response.read() == b"ok"
    assert server.connections == 3  # each reuse failed once and went again fresh
    assert len(server.requests) == 5
