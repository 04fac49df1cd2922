"""Predictions through the gateway: routed to a ready replica of the caller's deployment,
round-robin, retried on another replica when one refuses the connection, 503 with Retry-After
when none is ready, 404 for another tenant's deployment. The deployer is a fake (a real HTTP
server on 127.0.0.1 answering the internal route lookup); replicas are real HTTP servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kubeserve_common.net import free_port
from kubeserve_common.testing.servers import serve_app


def replica_app(name: str) -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(path: str, request: Request) -> dict[str, Any]:
        return {"replica": name, "path": "/" + path, "body": (await request.body()).decode()}

    return app


class FakeDeployer:
    """Answers `GET /internal/deployments/{id}/route` from a table the test fills."""

    def __init__(self) -> None:
        self.routes: dict[str, dict[str, Any]] = {}
        self.lookups = 0
        self.app = FastAPI()

        @self.app.get("/internal/deployments/{deployment_id}/route")
        async def route(deployment_id: str, request: Request) -> JSONResponse:
            self.lookups += 1
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"error": {"code": "unauthorized"}}, status_code=401)
            found = self.routes.get(deployment_id)
            if found is None:
                return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
            return JSONResponse(found)


@pytest.fixture
def replicas() -> Iterator[list[str]]:
    with serve_app(replica_app("r1")) as one, serve_app(replica_app("r2")) as two:
        yield [one, two]


@pytest.fixture
def deployer() -> Iterator[tuple[FakeDeployer, str]]:
    fake = FakeDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


def add_route(fake: FakeDeployer, owner: str, endpoints: list[str], status: str = "Running") -> str:
    deployment_id = str(uuid.uuid4())
    fake.routes[deployment_id] = {
        "deployment_id": deployment_id,
        "owner_id": owner,
        "status": status,
        "revision": 1,
        "ready_replicas": len(endpoints),
        "endpoints": endpoints,
    }
    return deployment_id


async def test_predictions_reach_the_replicas_round_robin(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = add_route(fake, stack.user_id, replicas)
        seen = set()
        for _ in range(4):
            response = await stack.client.post(
                f"/api/v1/predict/{deployment}",
                json={"instances": [[1, 2]]},
                headers=stack.bearer(),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["path"] == "/predict"
            assert body["body"] == '{"instances":[[1,2]]}'
            seen.add(body["replica"])
        assert seen == {"r1", "r2"}
        v2 = await stack.client.post(
            f"/api/v1/predict/{deployment}/v2/models/iris/infer",
            json={"inputs": []},
            headers=stack.bearer(),
        )
        assert v2.json()["path"] == "/v2/models/iris/infer"
        ready = await stack.client.get(
            f"/api/v1/predict/{deployment}/v2/health/ready", headers=stack.bearer()
        )
        assert ready.json()["path"] == "/v2/health/ready"


async def test_a_replica_refusing_connections_is_skipped(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with make_stack(deployer_url=url) as stack:
        deployment = add_route(fake, stack.user_id, [dead, replicas[0]])
        for _ in range(4):
            response = await stack.client.post(
                f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
            )
            assert response.status_code == 200, response.text
            assert response.json()["replica"] == "r1"


async def test_no_ready_replica_is_503_with_retry_after(
    make_stack: Any, deployer: tuple[FakeDeployer, str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = add_route(fake, stack.user_id, [], status="Deploying")
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert "no ready replica" in response.json()["error"]["message"]
        dead = add_route(fake, stack.user_id, [f"http://127.0.0.1:{free_port()}"])
        response = await stack.client.post(
            f"/api/v1/predict/{dead}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "upstream_unavailable"


async def test_other_tenants_and_unknown_deployments_are_404(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        theirs = add_route(fake, str(uuid.uuid4()), replicas)
        for deployment in (theirs, str(uuid.uuid4()), "not-a-uuid"):
            response = await stack.client.post(
                f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
            )
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"
        anonymous = await stack.client.post(f"/api/v1/predict/{theirs}", json={})
        assert anonymous.status_code == 401


async def test_scoped_api_keys_only_call_their_deployments(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        mine = add_route(fake, stack.user_id, replicas)
        other = add_route(fake, stack.user_id, replicas)
        key = "ks_" + uuid.uuid4().hex
        stack.auth.api_keys[key] = {
            "user_id": stack.user_id,
            "role": "user",
            "api_key_id": str(uuid.uuid4()),
            "deployment_ids": [mine],
        }
        ok = await stack.client.post(
            f"/api/v1/predict/{mine}", json={"instances": [[1]]}, headers={"x-api-key": key}
        )
        assert ok.status_code == 200, ok.text
        refused = await stack.client.post(
            f"/api/v1/predict/{other}", json={"instances": [[1]]}, headers={"x-api-key": key}
        )
        assert refused.status_code == 403


async def test_ingress_auth_check_for_predictions_served_by_the_ingress(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    """nginx auth-url (charts/model-serving): 2xx with the tenant for the owner, 401 without
    credentials, 403 for a key scoped elsewhere, 404 for another tenant's deployment."""
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        mine = add_route(fake, stack.user_id, replicas)
        theirs = add_route(fake, str(uuid.uuid4()), replicas)

        async def check(uri: str, headers: dict[str, str]) -> Any:
            return await stack.client.get(
                "/internal/auth/predict", headers={"x-original-uri": uri, **headers}
            )

        ok = await check(f"/api/v1/predict/{mine}/v2/models/iris/infer", stack.bearer())
        assert ok.status_code == 204
        assert ok.headers["x-kubeserve-tenant"] == stack.user_id
        assert (await check(f"/api/v1/predict/{mine}", {})).status_code == 401
        assert (await check(f"/api/v1/predict/{theirs}", stack.bearer())).status_code == 404
        assert (await check("/api/v1/models", stack.bearer())).status_code == 404
        missing = await stack.client.get("/internal/auth/predict", headers=stack.bearer())
        assert missing.status_code == 400
        key = "ks_" + uuid.uuid4().hex
        stack.auth.api_keys[key] = {
            "user_id": stack.user_id,
            "role": "user",
            "api_key_id": str(uuid.uuid4()),
            "deployment_ids": [theirs],
        }
        assert (await check(f"/api/v1/predict/{mine}", {"x-api-key": key})).status_code == 403


async def test_predictions_take_the_fast_path_and_keep_the_route_label(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    from kubeserve_common.metrics import HTTP_REQUESTS

    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = add_route(fake, stack.user_id, replicas[:1])
        labels = ("gateway", "POST", "/api/v1/{path:path}", "200")
        before = HTTP_REQUESTS.labels(*labels)._value.get()
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 200, response.text
        assert response.json()["path"] == "/predict"
        assert response.headers["x-request-id"]
        assert HTTP_REQUESTS.labels(*labels)._value.get() == before + 1
        # An error inside the fast path is the same JSON error as anywhere else.
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}", json={}, headers={"authorization": "Basic x"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
