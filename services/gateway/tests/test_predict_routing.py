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
from kubeserve_common.net import free_port
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.testing import FakeDeployer


def replica_app(name: str) -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(path: str, request: Request) -> dict[str, Any]:
        return {"replica": name, "path": "/" + path, "body": (await request.body()).decode()}

    return app


@pytest.fixture
def replicas() -> Iterator[list[str]]:
    with serve_app(replica_app("r1")) as one, serve_app(replica_app("r2")) as two:
        yield [one, two]


@pytest.fixture
def deployer() -> Iterator[tuple[FakeDeployer, str]]:
    fake = FakeDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


async def test_predictions_reach_the_replicas_round_robin(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, replicas)
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
        deployment = fake.add(stack.user_id, [dead, replicas[0]])
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
        deployment = fake.add(stack.user_id, [], status="Deploying")
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert "no ready replica" in response.json()["error"]["message"]
        dead = fake.add(stack.user_id, [f"http://127.0.0.1:{free_port()}"])
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
        theirs = fake.add(str(uuid.uuid4()), replicas)
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
        mine = fake.add(stack.user_id, replicas)
        other = fake.add(stack.user_id, replicas)
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


async def test_ingress_auth_answers_nginx_only_what_it_can_pass_on(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    """nginx auth-url (charts/model-serving): 2xx lets the prediction through, 401/403 go back
    to the client, anything else nginx turns into a 500 - so every refusal is a 401 or a 403
    with the reason in X-KubeServe-Auth-Error, and another tenant's deployment is refused
    exactly like a missing one."""
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        mine = fake.add(stack.user_id, replicas)
        starting = fake.add(stack.user_id, [], status="Deploying")
        theirs = fake.add(str(uuid.uuid4()), replicas)

        async def check(uri: str | None, headers: dict[str, str], method: str = "POST") -> Any:
            sent = {"x-original-method": method, **headers}
            if uri is not None:
                sent["x-original-uri"] = uri
            return await stack.client.get("/internal/auth/predict", headers=sent)

        def refused(response: Any, status: int, code: str) -> None:
            assert response.status_code == status, response.text
            assert response.headers["x-kubeserve-auth-error"] == code
            assert response.json()["error"]["code"] == code

        for uri, method in [
            (f"/api/v1/predict/{mine}", "POST"),
            (f"/api/v1/predict/{mine}?explain=1", "POST"),
            (f"/api/v1/predict/{mine}/v2/models/iris/infer", "POST"),
            (f"/api/v1/predict/{mine}/v2/health/ready", "GET"),
            (f"/api/v1/predict/{mine}/v1/models/iris:predict", "POST"),
            # Not ready yet: authorised; the Service has no endpoints and nginx answers 503.
            (f"/api/v1/predict/{starting}", "POST"),
        ]:
            ok = await check(uri, stack.bearer(), method)
            assert ok.status_code == 204, (uri, ok.text)
            assert ok.headers["x-kubeserve-tenant"] == stack.user_id

        missing_credentials = await check(f"/api/v1/predict/{mine}", {})
        refused(missing_credentials, 401, "unauthorized")
        assert missing_credentials.headers["www-authenticate"].startswith("Bearer")
        refused(
            await check(f"/api/v1/predict/{mine}", {"authorization": "Bearer x.y.z"}),
            401,
            "unauthorized",
        )
        # Another tenant's deployment and a deployment that does not exist: the same answer.
        other = await check(f"/api/v1/predict/{theirs}", stack.bearer())
        nothing = await check(f"/api/v1/predict/{uuid.uuid4()}", stack.bearer())
        refused(other, 403, "not_found")
        refused(nothing, 403, "not_found")
        unknown = nothing.request.headers["x-original-uri"].rsplit("/", 1)[1]
        assert other.json()["error"]["message"].replace(theirs, "X") == (
            nothing.json()["error"]["message"].replace(unknown, "X")
        )
        # Not prediction paths, hostile paths, bad or missing headers: refused, never a 500.
        for uri in [
            "/api/v1/models",
            f"/api/v1/predict/{mine}/predict",
            f"/api/v1/predict/{mine}/../../models",
            f"/api/v1/predict/{mine}/v2/%2e%2e/x",
            # nginx resolves this to *their* deployment's location: judged as nginx reads it.
            f"/api/v1/predict/{mine}/v2/%2e%2e/%2E%2E/{theirs}/v2/models/iris/infer",
            f"/api/v1/predict/{mine}%2F..%2F{theirs}",
            "/api/v1/predict/" + "a" * 5000,
            "not-a-path",
        ]:
            refused(await check(uri, stack.bearer()), 403, "not_found")
        # GET of the deployment's root is KServe V1's server liveness: a prediction route.
        live = await check(f"/api/v1/predict/{mine}", stack.bearer(), "GET")
        assert live.status_code == 204, live.text
        refused(await check(f"/api/v1/predict/{mine}", stack.bearer(), "PUT"), 403, "not_found")
        refused(await check(f"/api/v1/predict/{mine}", stack.bearer(), "BREW"), 403, "bad_request")
        refused(await check(None, stack.bearer()), 403, "bad_request")
        # An API key scoped to another deployment: 403 forbidden.
        key = "ks_" + uuid.uuid4().hex
        stack.auth.api_keys[key] = {
            "user_id": stack.user_id,
            "role": "user",
            "api_key_id": str(uuid.uuid4()),
            "deployment_ids": [theirs],
        }
        refused(await check(f"/api/v1/predict/{mine}", {"x-api-key": key}), 403, "forbidden")


async def test_ingress_auth_refuses_with_403_while_the_deployer_cannot_vouch(
    make_stack: Any, replicas: list[str]
) -> None:
    """No deployer to confirm the owner (it is down, or never configured): 403 unavailable,
    not nginx's 500; the prediction is refused rather than let through unchecked."""
    async with make_stack(deployer_url=f"http://127.0.0.1:{free_port()}") as stack:
        answer = await stack.client.get(
            "/internal/auth/predict",
            headers={
                "x-original-uri": f"/api/v1/predict/{uuid.uuid4()}",
                "x-original-method": "POST",
                **stack.bearer(),
            },
        )
        assert answer.status_code == 403, answer.text
        assert answer.headers["x-kubeserve-auth-error"] == "upstream_unavailable"


async def test_ingress_auth_turns_a_rate_limit_into_a_403(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(
        deployer_url=url, rate_limit_principal_burst=1, rate_limit_principal_rps=0.001
    ) as stack:
        mine = fake.add(stack.user_id, replicas)
        headers = {"x-original-uri": f"/api/v1/predict/{mine}", **stack.bearer()}
        first = await stack.client.get("/internal/auth/predict", headers=headers)
        assert first.status_code == 204
        limited = await stack.client.get("/internal/auth/predict", headers=headers)
        assert limited.status_code == 403
        assert limited.headers["x-kubeserve-auth-error"] == "rate_limited"
        assert limited.headers["retry-after"]


async def test_the_gateway_routes_the_kserve_v1_paths_too(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, replicas[:1])
        response = await stack.client.post(
            f"/api/v1/predict/{deployment}/v1/models/iris:predict",
            json={"instances": [[1]]},
            headers=stack.bearer(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["path"] == "/v1/models/iris:predict"


async def test_predictions_take_the_fast_path_and_keep_the_route_label(
    make_stack: Any, deployer: tuple[FakeDeployer, str], replicas: list[str]
) -> None:
    from kubeserve_common.metrics import HTTP_REQUESTS

    fake, url = deployer
    async with make_stack(deployer_url=url) as stack:
        deployment = fake.add(stack.user_id, replicas[:1])
        # The route label is the public route template (never the deployment id).
        labels = ("gateway", "POST", "/api/v1/predict/{deployment_id}", "200")
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
