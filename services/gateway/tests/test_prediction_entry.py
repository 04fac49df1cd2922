"""The prediction entry (api/predictions.py) answers `/api/v1/predict/...` outside the app's
middleware stack: what those layers did for a prediction must still happen - request ids,
body limits, JSON errors (never a traceback, never a bare 500), request metrics, the
dashboard's stats, CORS. A real gateway over sockets, a fake deployer (a real HTTP server)
and a real replica that echoes what it received."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.testing import FakeDeployer

MIB = 1024 * 1024
BIG = bytes(range(256)) * 4096  # 1 MiB, far over the one-piece size


def echo_replica() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {"size": len(body), "request_id": request.headers.get("x-request-id")}

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, Any]:
        return {"ready": True}

    @app.get("/v2/models/big")
    async def big() -> Response:
        return Response(BIG, media_type="application/octet-stream")

    return app


@pytest.fixture
def replica() -> Iterator[str]:
    with serve_app(echo_replica()) as url:
        yield url


@pytest.fixture
def deployer() -> Iterator[tuple[FakeDeployer, str]]:
    fake = FakeDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert response.headers["x-request-id"]


async def test_a_prediction_carries_its_request_id_to_the_replica_and_back(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, [replica])
        given = await stack.client.post(
            f"/api/v1/predict/{deployment}",
            json={"instances": [[1]]},
            headers={**stack.bearer(), "x-request-id": "trace-me.42"},
        )
        assert given.status_code == 200, given.text
        assert given.headers["x-request-id"] == "trace-me.42"
        assert given.json()["request_id"] == "trace-me.42"
        # A malformed id is replaced, never echoed.
        made = await stack.client.post(
            f"/api/v1/predict/{deployment}",
            json={"instances": [[1]]},
            headers={**stack.bearer(), "x-request-id": "no spaces\tplease"},
        )
        assert made.status_code == 200
        assert len(made.headers["x-request-id"]) == 32
        assert made.json()["request_id"] == made.headers["x-request-id"]
        # Refusals carry one too (and name the problem).
        assert_error(
            await stack.client.post(f"/api/v1/predict/{deployment}", json={}), 401, "unauthorized"
        )


async def test_prediction_bodies_over_the_limit_get_413_and_the_gateway_keeps_serving(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url, gateway_max_body_bytes=MIB) as stack:
        deployment = fake.add(stack.user_id, [replica])
        path = f"/api/v1/predict/{deployment}"
        declared = await stack.client.post(path, content=b"x" * (MIB + 1), headers=stack.bearer())
        assert_error(declared, 413, "payload_too_large")
        assert str(MIB) in declared.json()["error"]["message"]

        async def chunked(n: int) -> Any:
            for _ in range(n):
                yield b"y" * 65536

        streamed = await stack.client.post(path, content=chunked(20), headers=stack.bearer())
        assert_error(streamed, 413, "payload_too_large")
        # Exactly at the limit is fine, declared or streamed.
        at_limit = await stack.client.post(path, content=b"z" * MIB, headers=stack.bearer())
        assert at_limit.status_code == 200 and at_limit.json()["size"] == MIB
        streamed = await stack.client.post(path, content=chunked(16), headers=stack.bearer())
        assert streamed.status_code == 200 and streamed.json()["size"] == MIB


async def test_an_unexpected_error_is_a_json_500_and_an_outage_a_503(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, [replica])
        service = stack.gateway.service
        handle = service.handle

        async def broken(request: Any) -> Any:
            raise RuntimeError("a bug in the gateway")

        service.handle = broken  # type: ignore[method-assign]
        path = f"/api/v1/predict/{deployment}"
        bug = await stack.client.post(path, json={}, headers=stack.bearer())
        assert_error(bug, 500, "internal")
        assert "a bug" not in bug.text  # no internals leak

        async def dependency_away(request: Any) -> Any:
            raise httpx.ConnectError("connection refused")

        service.handle = dependency_away  # type: ignore[method-assign]
        outage = await stack.client.post(path, json={}, headers=stack.bearer())
        assert_error(outage, 503, "upstream_unavailable")
        assert outage.headers["retry-after"]
        service.handle = handle  # type: ignore[method-assign]
        assert (await stack.client.post(path, json={}, headers=stack.bearer())).status_code == 200


async def test_predictions_are_counted_in_the_metrics_and_the_dashboard_stats(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, [replica])
        before = _predictions_counted(await stack.client.get("/metrics"))
        for _ in range(3):
            r = await stack.client.post(
                f"/api/v1/predict/{deployment}", json={}, headers=stack.bearer()
            )
            assert r.status_code == 200
        # A stranger's refusal is not the model's error rate.
        await stack.client.post(f"/api/v1/predict/{deployment}", json={})
        assert _predictions_counted(await stack.client.get("/metrics")) == before + 3
        window = stack.gateway.browser.stats.window(deployment)
        assert sum(point["requests"] for point in window["points"]) == 3
        assert sum(point["errors"] for point in window["points"]) == 0


def _predictions_counted(metrics: Any) -> float:
    """The gateway's 200s on the prediction route so far (the counter is per process)."""
    for row in metrics.text.splitlines():
        if (
            row.startswith("kubeserve_http_requests_total{")
            and 'route="/api/v1/predict/{deployment_id}"' in row
            and 'status="200"' in row
            and 'service="gateway"' in row
        ):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


async def test_a_large_answer_is_streamed_whole(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    """Answers over the gateway's one-piece size (64 KiB) are relayed chunk by chunk."""
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, [replica])
        r = await stack.client.get(
            f"/api/v1/predict/{deployment}/v2/models/big", headers=stack.bearer()
        )
        assert r.status_code == 200
        assert r.content == BIG
        assert r.headers["x-request-id"]


async def test_predictions_carry_cors_headers_when_configured(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replica: str
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url, cors_origins="https://app.example") as stack:
        deployment = fake.add(stack.user_id, [replica])
        path = f"/api/v1/predict/{deployment}"
        allowed = await stack.client.post(
            path, json={}, headers={**stack.bearer(), "origin": "https://app.example"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in allowed.headers["access-control-expose-headers"]
        refused = await stack.client.post(path, json={}, headers={"origin": "https://app.example"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        preflight = await stack.client.options(
            path,
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        other = await stack.client.post(
            path, json={}, headers={**stack.bearer(), "origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
