"""The data plane outlives the control plane: while the deployer (or its database) cannot answer
route lookups, predictions keep going to the last known replicas (bounded by
`predict_route_max_stale`); while auth cannot answer, API keys and the JWKS serve their last
known answers within their bounds. Real gateway, real replica servers; the deployer is a small
fake HTTP server that can answer 503 like the real one does when its database is away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from kubeserve_common.errors import ServiceUnavailable
from kubeserve_common.security.principal import Principal
from kubeserve_common.security.tokens import SigningKey, jwks
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.adapters.auth import AuthUnavailable
from kubeserve_gateway.services.authenticator import ApiKeyCache, JwksCache
from kubeserve_gateway.testing import FakeDeployer


def replica_app(name: str) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        return {"replica": name, "predictions": [1]}

    return app


@pytest.fixture
def flaky() -> Iterator[tuple[FakeDeployer, str]]:
    fake = FakeDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture
def replica() -> Iterator[str]:
    with serve_app(replica_app("r1")) as url:
        yield url


async def test_predictions_keep_flowing_while_the_deployer_cannot_answer(
    make_stack: Any, flaky: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = flaky
    async with make_stack(deployer_url=url, predict_route_ttl=0.05) as stack:
        deployment = fake.add(stack.user_id, [replica])
        unknown = fake.add(stack.user_id, [replica])  # never called before the outage

        async def predict(dep: str) -> Any:
            return await stack.client.post(
                f"/api/v1/predict/{dep}", json={"instances": [[1]]}, headers=stack.bearer()
            )

        assert (await predict(deployment)).status_code == 200
        fake.down = True
        lookups = fake.lookups
        for _ in range(20):
            answer = await predict(deployment)
            assert answer.status_code == 200, answer.text
            assert answer.json()["replica"] == "r1"
            await asyncio.sleep(0.01)  # 20 predictions span several TTLs however fast they are
        assert fake.lookups > lookups  # it kept asking (a TTL apart), and kept serving
        # What the gateway never knew cannot be served: a 503 naming the cause, not a 500.
        never_seen = await predict(unknown)
        assert never_seen.status_code == 503
        assert never_seen.json()["error"]["code"] == "upstream_unavailable"
        assert never_seen.headers["retry-after"]
        # Once the deployer answers again, a deletion it reports stops predictions.
        fake.down = False
        del fake.routes[deployment]
        gone = None
        for _ in range(100):
            gone = await predict(deployment)
            if gone.status_code == 404:
                break
        assert gone is not None and gone.status_code == 404


async def test_without_staleness_the_outage_is_a_503(
    make_stack: Any, flaky: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = flaky
    async with make_stack(
        deployer_url=url, predict_route_ttl=0.0, predict_route_max_stale=0.0
    ) as stack:
        deployment = fake.add(stack.user_id, [replica])
        headers = stack.bearer()
        path = f"/api/v1/predict/{deployment}"
        assert (await stack.client.post(path, json={}, headers=headers)).status_code == 200
        fake.down = True
        answer = await stack.client.post(path, json={}, headers=headers)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "upstream_unavailable"


class FlakyAuth:
    def __init__(self) -> None:
        self.down = False
        self.principal: Principal | None = Principal(
            user_id=uuid.uuid4(), role="user", auth="api_key", api_key_id=uuid.uuid4()
        )
        self.keys: dict[str, Any] = {"keys": []}

    async def fetch_jwks(self) -> dict[str, Any]:
        if self.down:
            raise AuthUnavailable("away")
        return self.keys

    async def resolve_api_key(self, api_key: str) -> Principal | None:
        if self.down:
            raise AuthUnavailable("away")
        return self.principal


async def test_api_keys_resolve_from_the_last_answer_while_auth_is_away_within_a_bound() -> None:
    auth = FlakyAuth()
    now = [0.0]
    cache = ApiKeyCache(
        auth, ttl=5, negative_ttl=2, max_entries=10, max_stale=300, clock=lambda: now[0]
    )
    assert await cache.resolve("ks_known-key") == auth.principal
    auth.down = True
    now[0] = 200.0  # expired long ago; auth is away: the last answer serves
    assert await cache.resolve("ks_known-key") == auth.principal
    with pytest.raises(AuthUnavailable):  # a key never seen cannot be vouched for
        await cache.resolve("ks_other-key")
    now[0] = 301.0  # more than max_stale since auth last confirmed it
    with pytest.raises(AuthUnavailable):
        await cache.resolve("ks_known-key")


async def test_a_revoked_key_stays_refused_while_auth_is_away() -> None:
    auth = FlakyAuth()
    auth.principal = None  # revoked
    now = [0.0]
    cache = ApiKeyCache(
        auth, ttl=5, negative_ttl=2, max_entries=10, max_stale=300, clock=lambda: now[0]
    )
    assert await cache.resolve("ks_revoked-key") is None
    auth.down = True
    now[0] = 50.0
    assert await cache.resolve("ks_revoked-key") is None


async def test_the_jwks_serves_while_auth_is_away_then_gives_up_after_its_bound() -> None:
    auth = FlakyAuth()
    key = SigningKey.generate()
    auth.keys = jwks([key])
    now = [0.0]
    cache = JwksCache(auth, ttl=300, refetch_interval=10, max_stale=3600, clock=lambda: now[0])
    kid = next(iter(await cache.keys_for("any")))
    auth.down = True
    now[0] = 3000.0  # refetch fails, the keys we have keep working
    assert kid in await cache.keys_for(kid)
    now[0] = 3700.0
    with pytest.raises(ServiceUnavailable):
        await cache.keys_for(kid)


async def _dropping_replica(received: list[bytes]) -> tuple[asyncio.AbstractServer, str]:
    """A replica that takes the request and dies before answering (kill -9 mid-request)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await reader.readuntil(b"\r\n\r\n"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        transport = writer.transport
        transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_a_replica_dying_mid_request_is_retried_once_on_another(
    make_stack: Any, flaky: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = flaky
    received: list[bytes] = []
    dying, dying_url = await _dropping_replica(received)
    try:
        async with make_stack(deployer_url=url) as stack:
            deployment = fake.add(stack.user_id, [dying_url, replica])
            for _ in range(6):
                answer = await stack.client.post(
                    f"/api/v1/predict/{deployment}",
                    json={"instances": [[1]]},
                    headers=stack.bearer(),
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["replica"] == "r1"
            assert received  # some requests reached the dying replica first
    finally:
        dying.close()


async def test_a_request_that_kills_replicas_is_retried_only_once(
    make_stack: Any, flaky: tuple[FakeDeployer, str]
) -> None:
    fake, url = flaky
    received: list[bytes] = []
    servers = [await _dropping_replica(received) for _ in range(3)]
    try:
        async with make_stack(deployer_url=url) as stack:
            deployment = fake.add(stack.user_id, [u for _, u in servers])
            answer = await stack.client.post(
                f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "upstream_unavailable"
            assert answer.headers["retry-after"]
            assert len(received) == 2  # the first replica, then one other: not all three
    finally:
        for server, _ in servers:
            server.close()
