"""The gateway's dashboard-facing HTTP surface over real sockets: server-sent events with
one-time tickets, the browser refresh-cookie session (and the untouched JSON flow), the static
dashboard, /api/v1/config and the per-deployment prediction stats; plus the transient bus
subscription on a real RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kubeserve_common.events.catalog import ModelCreated
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.bootstrap import bootstrap
from kubeserve_gateway.main import create_app
from kubeserve_gateway.settings import GatewaySettings
from kubeserve_gateway.testing import FakeAuth

OWNER = str(uuid.uuid4())
DEPLOYMENT = str(uuid.uuid4())


def fake_platform(auth: FakeAuth, seen: list[dict[str, Any]]) -> FastAPI:
    """Auth's JWKS and session routes, and the deployer's internal route lookup."""
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks_document() -> dict[str, Any]:
        from kubeserve_common.security.tokens import jwks

        return jwks(auth.keys)

    @app.post("/auth/{action}")
    async def session(action: str, request: Request) -> JSONResponse:
        body = await request.body()
        seen.append(
            {
                "action": action,
                "body": json.loads(body) if body else None,
                "cookie": request.headers.get("cookie"),
            }
        )
        if action == "logout":
            return JSONResponse(None, status_code=204)
        if (
            action == "refresh"
            and (json.loads(body) if body else {}).get("refresh_token") != "ksr_old"
        ):
            return JSONResponse({"error": {"code": "unauthorized", "message": "reused"}}, 401)
        return JSONResponse(
            {
                "access_token": "access",
                "token_type": "bearer",
                "expires_in": 900,
                "refresh_token": "ksr_new",
                "refresh_expires_in": 3600,
            }
        )

    @app.get("/internal/deployments/{deployment_id}/route")
    async def route(deployment_id: str) -> JSONResponse:
        if deployment_id != DEPLOYMENT:
            return JSONResponse({"error": {"code": "not_found", "message": "no"}}, 404)
        return JSONResponse(
            {
                "deployment_id": DEPLOYMENT,
                "owner_id": OWNER,
                "status": "Running",
                "revision": 1,
                "ready_replicas": 0,
                "endpoints": [],
            }
        )

    return app


class Gateway:
    def __init__(self, url: str, bus: InMemoryBus, auth: FakeAuth, seen: list[dict[str, Any]]):
        self.url, self.bus, self.auth, self.seen = url, bus, auth, seen

    def bearer(self, user: str = OWNER) -> dict[str, str]:
        return {"authorization": f"Bearer {self.auth.token(user)}"}

    def publish(self, event: CloudEvent) -> None:
        """Publish on the server's own loop (the in-memory bus is not thread-safe)."""
        loop = next(iter(self.bus._tasks)).get_loop()
        asyncio.run_coroutine_threadsafe(self.bus.publish(event), loop).result(5)


@contextlib.contextmanager
def gateway(tmp_path: Path, **overrides: Any) -> Iterator[Gateway]:
    auth, seen = FakeAuth(), []
    with serve_app(fake_platform(auth, seen)) as upstream:
        settings = GatewaySettings(
            dev_mode=True,
            internal_secret=TEST_INTERNAL_SECRET,
            home=tmp_path,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            broker_url="memory://",
            auth_url=upstream,
            registry_url=upstream,
            deployer_url=upstream,
            **overrides,
        )
        container = bootstrap(settings)  # owns its in-memory bus, connected on start
        app = create_app(container)
        assert isinstance(container.bus, InMemoryBus)
        bus = container.bus
        with serve_app(app) as url:
            yield Gateway(url, bus, auth, seen)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with gateway(tmp_path) as g:
        yield g


def model_created(owner: str, name: str) -> CloudEvent:
    payload = ModelCreated(
        model_id=uuid.uuid4(), owner_id=uuid.UUID(owner), name=name, framework="sklearn"
    )
    return CloudEvent.create(payload, service="registry", tenant_id=owner)


async def read_events(response: httpx.Response, count: int) -> list[tuple[str, str]]:
    """(event name, data) of the next `count` events, comments skipped."""
    out: list[tuple[str, str]] = []
    name, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = line.split(":", 1)[1].strip()
        elif line == "":
            out.append((name, data))
            name, data = "message", ""
            if len(out) == count:
                return out
    return out


# -- server-sent events -----------------------------------------------------------------------


async def test_events_stream_carries_only_the_callers_events(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        ticket = (await client.post("/api/v1/events/ticket", headers=gw.bearer())).json()
        assert ticket["expires_in"] == 30
        async with client.stream("GET", f"/api/v1/events?ticket={ticket['ticket']}") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            events = read_events(stream, 2)
            task = asyncio.ensure_future(events)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(gw.publish, model_created(str(uuid.uuid4()), "not-mine"))
            await asyncio.to_thread(gw.publish, model_created(OWNER, "mine"))
            received = await asyncio.wait_for(task, 10)
        assert received[0][0] == "ready"
        assert received[1][0] == "message"
        assert json.loads(received[1][1])["data"]["name"] == "mine"
        # The ticket was spent: a second stream (or a replay of the URL) is refused.
        again = await client.get(f"/api/v1/events?ticket={ticket['ticket']}")
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "unauthorized"


async def test_events_need_a_ticket_and_a_ticket_needs_credentials(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        assert (await client.get("/api/v1/events")).status_code == 401
        assert (await client.get("/api/v1/events?ticket=forged.sig")).status_code == 401
        refused = await client.post("/api/v1/events/ticket")
        assert refused.status_code == 401 and "error" in refused.json()
        # the long-lived access token is no substitute for a ticket in the URL
        token = gw.auth.token(OWNER)
        assert (await client.get(f"/api/v1/events?ticket={token}")).status_code == 401


async def test_events_heartbeat_and_end_of_stream(tmp_path: Path) -> None:
    with gateway(tmp_path, events_heartbeat=0.2, events_max_stream_seconds=1.0) as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            ticket = (await client.post("/api/v1/events/ticket", headers=gw.bearer())).json()
            lines = []
            async with client.stream("GET", f"/api/v1/events?ticket={ticket['ticket']}") as s:
                async for line in s.aiter_lines():
                    lines.append(line)
        assert ": keep-alive" in lines
        assert "event: expired" in lines  # the browser then asks a new ticket


# -- browser session cookie -------------------------------------------------------------------


async def test_cookie_session_keeps_the_refresh_token_out_of_javascript(gw: Gateway) -> None:
    header = {"x-kubeserve-session": "cookie"}
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "a@x.io", "password": "p"}, headers=header
        )
        assert login.status_code == 200
        body = login.json()
        assert body["access_token"] == "access" and "refresh_token" not in body
        cookie = login.headers["set-cookie"]
        assert cookie.startswith("ksr_new") is False and "ks_refresh=ksr_new" in cookie
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=3600"):
            assert flag in cookie
        assert "Secure" not in cookie  # plain http here; https requests get Secure
        assert login.headers["cache-control"] == "no-store"

        # refresh: the token comes from the cookie, never from the page
        client.cookies.set("ks_refresh", "ksr_old", path="/api/v1/auth")
        refreshed = await client.post("/api/v1/auth/refresh", headers=header)
        assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()
        assert gw.seen[-1]["body"] == {"refresh_token": "ksr_old"}
        assert gw.seen[-1]["cookie"] is None  # the cookie itself never goes upstream

        # a failed refresh clears the cookie
        client.cookies.set("ks_refresh", "ksr_stale", path="/api/v1/auth")
        failed = await client.post("/api/v1/auth/refresh", headers=header)
        assert failed.status_code == 401 and "Max-Age=0" in failed.headers["set-cookie"]

        client.cookies.set("ks_refresh", "ksr_old", path="/api/v1/auth")
        out = await client.post("/api/v1/auth/logout", headers=header)
        assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
        assert gw.seen[-1] == {
            "action": "logout",
            "body": {"refresh_token": "ksr_old"},
            "cookie": None,
        }


async def test_cookie_is_not_used_without_the_custom_header(gw: Gateway) -> None:
    """CSRF: a cross-site form can send the cookie (if SameSite failed) but not the header."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        client.cookies.set("ks_refresh", "ksr_old", path="/api/v1/auth")
        forged = await client.post(
            "/api/v1/auth/refresh",
            content=b"",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert gw.seen[-1]["body"] is None  # the cookie's token was not injected
        assert forged.status_code == 401
        assert "set-cookie" not in forged.headers
        no_cookie = await httpx.AsyncClient(base_url=gw.url).post(
            "/api/v1/auth/refresh", headers={"x-kubeserve-session": "cookie"}
        )
        assert no_cookie.status_code == 401
        assert no_cookie.json()["error"]["message"] == "no session; log in again"


async def test_json_flow_of_the_cli_is_unchanged(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        login = await client.post("/api/v1/auth/login", json={"email": "a@x.io", "password": "p"})
        assert login.json()["refresh_token"] == "ksr_new"
        assert "set-cookie" not in login.headers
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": "ksr_old"})
        assert refreshed.json()["refresh_token"] == "ksr_new"


async def test_cookie_is_secure_behind_an_https_proxy(tmp_path: Path) -> None:
    with gateway(tmp_path, trusted_proxy_hops=1) as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            login = await client.post(
                "/api/v1/auth/login",
                json={"email": "a@x.io", "password": "p"},
                headers={"x-kubeserve-session": "cookie", "x-forwarded-proto": "https"},
            )
            assert "; Secure" in login.headers["set-cookie"]


# -- dashboard, config, metrics ---------------------------------------------------------------


async def test_dashboard_is_served_with_caching_and_fallback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    (out / "_next" / "static" / "chunks").mkdir(parents=True)
    (out / "index.html").write_text("<html>home</html>")
    (out / "models" / "index.html").write_text("<html>models</html>")
    (out / "404.html").write_text("<html>404</html>")
    (out / "_next" / "static" / "chunks" / "app-1234.js").write_text("console.log(1)")
    with gateway(tmp_path, dashboard_dir=out, grafana_url="https://grafana.example.com") as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            home = await client.get("/")
            assert home.status_code == 200 and home.text == "<html>home</html>"
            assert home.headers["cache-control"] == "no-cache"
            assert (
                "frame-src 'self' https://grafana.example.com"
                in home.headers["content-security-policy"]
            )
            assert home.headers["x-frame-options"] == "DENY"
            again = await client.get("/", headers={"if-none-match": home.headers["etag"]})
            assert again.status_code == 304
            assert (await client.get("/models/")).text == "<html>models</html>"
            asset = await client.get("/_next/static/chunks/app-1234.js")
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "javascript" in asset.headers["content-type"]
            deep = await client.get("/models/some/client/route")
            assert deep.status_code == 200 and deep.text == "<html>models</html>"
            page = {"accept": "text/html,application/xhtml+xml"}
            unknown = await client.get("/no-such-page", headers=page)
            assert unknown.status_code == 404 and unknown.text == "<html>404</html>"
            unknown = await client.get("/no-such-page")  # not a browser: the JSON error
            assert unknown.status_code == 404
            assert unknown.json()["error"]["code"] == "not_found"
            assert (await client.get("/_next/static/chunks/gone.js")).status_code == 404
            assert (await client.get("/%2e%2e/gw.db")).status_code in (400, 404)
            # never in the way of the API, docs and probes
            api = await client.get("/api/v2/anything")
            assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
            assert (await client.get("/api/v1/nothing-here")).json()["error"]["code"] == "not_found"
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/metrics")).status_code == 200
            assert "swagger" in (await client.get("/docs")).text.lower()
            config = (await client.get("/api/v1/config")).json()
            assert config["grafana"]["url"] == "https://grafana.example.com"


async def test_without_a_build_the_root_says_how_to_build(tmp_path: Path) -> None:
    with gateway(tmp_path, dashboard_dir=tmp_path / "missing") as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            root = await client.get("/")
            assert root.status_code == 200 and "npm run build" in root.text
            assert (await client.get("/api/v1/config")).json()["grafana"] is None


async def test_prediction_stats_belong_to_the_deployment_owner(gw: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        # No ready replica: a 503 from the platform, counted as an error of the deployment.
        predicted = await client.post(
            f"/api/v1/predict/{DEPLOYMENT}", json={"instances": [[1]]}, headers=gw.bearer()
        )
        assert predicted.status_code == 503
        mine = await client.get(f"/api/v1/metrics/deployments/{DEPLOYMENT}", headers=gw.bearer())
        assert mine.status_code == 200
        assert mine.json()["totals"]["requests"] == 1 and mine.json()["totals"]["errors"] == 1
        stranger = await client.get(
            f"/api/v1/metrics/deployments/{DEPLOYMENT}", headers=gw.bearer(str(uuid.uuid4()))
        )
        assert stranger.status_code == 404
        unknown = await client.get(
            f"/api/v1/metrics/deployments/{uuid.uuid4()}", headers=gw.bearer()
        )
        assert unknown.status_code == 404
        assert (await client.get(f"/api/v1/metrics/deployments/{DEPLOYMENT}")).status_code == 401


# -- the transient subscription on RabbitMQ ---------------------------------------------------


async def test_transient_subscription_on_rabbitmq(rabbit_bus_factory: Any) -> None:
    bus = rabbit_bus_factory("gateway")
    await bus.connect()
    got: asyncio.Queue[CloudEvent] = asyncio.Queue()

    async def handler(event: CloudEvent) -> None:
        await got.put(event)

    queue = bus.topology.queue("gateway", f"sse-{os.getpid()}-test")
    await bus.subscribe(
        Subscription(queue, ("io.kubeserve.#",), transient=True, prefetch=1), handler
    )
    await bus.publish(model_created(OWNER, "over-rabbit"))
    event = await asyncio.wait_for(got.get(), 10)
    assert event.data["name"] == "over-rabbit"
    assert queue not in bus.declared_queues  # nothing durable left to clean up
    await bus.close()
    # The queue went away with the connection.
    import aio_pika

    conn = await aio_pika.connect(bus.url)
    try:
        channel = await conn.channel()
        with pytest.raises(aio_pika.exceptions.ChannelClosed):
            await channel.declare_queue(queue, passive=True)
    finally:
        await conn.close()
