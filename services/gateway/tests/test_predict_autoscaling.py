"""Predictions through a real gateway with autoscaling in play: requests go to the replica with
the fewest in flight (a stuck replica gets none while another is free), in-flight figures reach
the deployer's load route, and a deployment scaled to zero holds the request until a replica
is ready (200), or answers 503 + Retry-After once the hold timeout passed. The deployer is a
fake HTTP server on 127.0.0.1; replicas are real HTTP servers."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.testing import FakeDeployer

from services.gateway.tests.test_predict_routing import replica_app


class LoadDeployer(FakeDeployer):
    """The route lookup plus `POST /internal/load`; a report with load for a deployment at
    zero "starts" its replica (the route gets `wake_to`)."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[dict[str, Any]] = []
        self.wake_to: dict[str, list[str]] = {}

        @self.app.post("/internal/load")
        async def load(request: Request) -> JSONResponse:
            body = await request.json()
            self.reports.append(body)
            for deployment_id, value in body["in_flight"].items():
                if value > 0 and deployment_id in self.wake_to:
                    route = self.routes[deployment_id]
                    route["endpoints"] = self.wake_to.pop(deployment_id)
                    route["scaled_to_zero"] = False
            return JSONResponse(None, status_code=204)


@pytest.fixture
def load_deployer() -> Iterator[tuple[LoadDeployer, str]]:
    fake = LoadDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


def stuck_app(gate: threading.Event, arrived: threading.Event) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    def stuck(path: str) -> dict[str, Any]:  # a thread of the server's pool waits here
        arrived.set()
        gate.wait(30)
        return {"replica": "stuck"}

    return app


async def test_least_in_flight_wins_over_rotation(
    make_stack: Any, load_deployer: tuple[LoadDeployer, str]
) -> None:
    fake, url = load_deployer
    gate, arrived = threading.Event(), threading.Event()
    with serve_app(stuck_app(gate, arrived)) as stuck, serve_app(replica_app("free")) as free:
        async with make_stack(deployer_url=url) as stack:
            deployment = fake.add(stack.user_id, [stuck, free])

            async def call() -> Any:
                return await stack.client.post(
                    f"/api/v1/predict/{deployment}",
                    json={"instances": [[1]]},
                    headers=stack.bearer(),
                )

            # Fire until one request sits on the stuck replica.
            pending = []
            while not arrived.is_set():
                pending.append(asyncio.ensure_future(call()))
                await asyncio.sleep(0.05)
            try:
                # Round-robin would send every other request to the stuck replica.
                for _ in range(6):
                    response = await asyncio.wait_for(call(), 10)
                    assert response.status_code == 200, response.text
                    assert response.json()["replica"] == "free"
            finally:
                gate.set()
            for done in await asyncio.gather(*pending):
                assert done.status_code == 200, done.text

            async def reported() -> bool:
                return any(deployment in r["in_flight"] for r in fake.reports)

            for _ in range(100):
                if await reported():
                    break
                await asyncio.sleep(0.05)
            figures = [
                r["in_flight"][deployment] for r in fake.reports if deployment in r["in_flight"]
            ]
            assert figures and max(figures) > 0


async def test_a_deployment_at_zero_holds_the_request_until_a_replica_is_ready(
    make_stack: Any, load_deployer: tuple[LoadDeployer, str]
) -> None:
    fake, url = load_deployer
    with serve_app(replica_app("woken")) as replica:
        async with make_stack(deployer_url=url) as stack:
            deployment = fake.add(stack.user_id, [])
            fake.routes[deployment]["scaled_to_zero"] = True
            fake.wake_to[deployment] = [replica]
            response = await stack.client.post(
                f"/api/v1/predict/{deployment}",
                json={"instances": [[1]]},
                headers=stack.bearer(),
            )
            assert response.status_code == 200, response.text
            assert response.json()["replica"] == "woken"


async def test_the_hold_ends_in_a_503_with_retry_after(
    make_stack: Any, load_deployer: tuple[LoadDeployer, str]
) -> None:
    fake, url = load_deployer
    async with make_stack(deployer_url=url, predict_hold_timeout=0.5) as stack:
        deployment = fake.add(stack.user_id, [])
        fake.routes[deployment]["scaled_to_zero"] = True  # and it never wakes
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        error = response.json()["error"]
        assert error["code"] == "deployment_waking"
        assert "none ready within 0.5s" in error["message"]
        other = str(uuid.uuid4())  # another tenant's deployment at zero is still a 404
        fake.routes[other] = {**fake.routes[deployment], "owner_id": str(uuid.uuid4())}
        response = await stack.client.post(
            f"/api/v1/predict/{other}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 404


async def test_a_wake_the_quota_cannot_hold_is_refused_at_once(
    make_stack: Any, load_deployer: tuple[LoadDeployer, str]
) -> None:
    fake, url = load_deployer
    # A long hold timeout: the answer must not wait for it.
    async with make_stack(deployer_url=url, predict_hold_timeout=60) as stack:
        deployment = fake.add(stack.user_id, [])
        fake.routes[deployment]["scaled_to_zero"] = True
        fake.routes[deployment]["wake_blocked"] = (
            f"deployment {deployment} is scaled to zero and cannot wake: your other "
            "deployments use 5 replicas and your quota allows 5"
        )
        response = await asyncio.wait_for(
            stack.client.post(
                f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
            ),
            timeout=30,
        )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "10"
        error = response.json()["error"]
        assert error["code"] == "wake_blocked_by_quota"
        assert "your quota allows 5" in error["message"]
