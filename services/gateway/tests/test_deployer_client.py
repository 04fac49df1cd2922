"""The gateway's client of the deployer's internal routes, against a real HTTP server playing the
deployer: answers are read by the shared contract (`kubeserve_common.contracts.deployer`,
endpoints without a trailing slash), a missing deployment is None, and anything else - a body
that breaks the contract, an error status, no answer at all - is `DeployerUnavailable`, which
the route resolver and the Prometheus discovery fall back on: a 503 or the last known list,
never a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from kubeserve_common.net import free_port
from kubeserve_common.security.tokens import verify_internal_token
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.adapters.deployer import DeployerUnavailable, HttpDeployerClient
from kubeserve_gateway.services.prometheus_sd import replica_key

DEPLOYMENT = str(uuid.uuid4())
OWNER = str(uuid.uuid4())
ROUTE_PATH = f"/internal/deployments/{DEPLOYMENT}/route"


def route_body(**changes: Any) -> dict[str, Any]:
    body = {
        "deployment_id": DEPLOYMENT,
        "owner_id": OWNER,
        "status": "Running",
        "revision": 2,
        "ready_replicas": 2,
        "endpoints": ["http://127.0.0.1:9/", "http://127.0.0.1:10"],
    }
    return {**body, **changes}


class ScriptedDeployer:
    """Answers each internal path with the (status, body) the test set; records what came in."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.received: list[tuple[str, str, Any]] = []
        self.app = FastAPI()

        @self.app.api_route("/internal/{rest:path}", methods=["GET", "POST"])
        async def answer(rest: str, request: Request) -> Response:
            body = await request.body()
            self.received.append(
                (
                    request.url.path,
                    request.headers.get("authorization", ""),
                    json.loads(body) if body else None,
                )
            )
            status, content = self.answers.get(request.url.path, (404, b'{"error": {}}'))
            return Response(content, status_code=status, media_type="application/json")

    def set(self, path: str, body: Any, status: int = 200) -> None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, content)


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedDeployer, str]]:
    fake = ScriptedDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture
async def deployer(
    scripted: tuple[ScriptedDeployer, str],
) -> AsyncIterator[HttpDeployerClient]:
    async with httpx.AsyncClient() as client:
        yield HttpDeployerClient(client, scripted[1], TEST_INTERNAL_SECRET, timeout=5)


async def test_a_route_is_read_by_the_contract_with_a_service_token(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient
) -> None:
    fake, _ = scripted
    fake.set(ROUTE_PATH, route_body(scaled_to_zero=True, unknown_later_field=1))
    route = await deployer.route(DEPLOYMENT)
    assert route is not None
    assert str(route.deployment_id) == DEPLOYMENT and str(route.owner_id) == OWNER
    # The gateway appends `/predict` to an endpoint: no doubled slash.
    assert route.endpoints == ("http://127.0.0.1:9", "http://127.0.0.1:10")
    assert route.scaled_to_zero is True and route.wake_blocked is None
    path, authorization, _ = fake.received[-1]
    assert path == ROUTE_PATH
    claims = verify_internal_token(TEST_INTERNAL_SECRET, authorization.removeprefix("Bearer "))
    assert claims["sub"] == "service:gateway"


@pytest.mark.parametrize("status", [404, 422])
async def test_an_unknown_deployment_is_none(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient, status: int
) -> None:
    scripted[0].set(ROUTE_PATH, {"error": {"code": "not_found"}}, status=status)
    assert await deployer.route(DEPLOYMENT) is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html>a proxy's error page</html>",
        [route_body()],
        {k: v for k, v in route_body().items() if k != "owner_id"},
        route_body(deployment_id="not-a-uuid"),
        route_body(endpoints=None),
        route_body(endpoints=[1, 2]),
        route_body(revision="second"),
    ],
    ids=["not-json", "a-list", "no-owner", "bad-id", "null-endpoints", "number-endpoints", "rev"],
)
async def test_a_body_that_breaks_the_contract_is_deployer_unavailable(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient, body: Any
) -> None:
    scripted[0].set(ROUTE_PATH, body)
    with pytest.raises(DeployerUnavailable, match="route lookup answered an unexpected body"):
        await deployer.route(DEPLOYMENT)


async def test_an_error_status_or_no_answer_is_deployer_unavailable(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient
) -> None:
    scripted[0].set(ROUTE_PATH, {"error": {"code": "database_unavailable"}}, status=503)
    with pytest.raises(DeployerUnavailable, match="route lookup answered 503"):
        await deployer.route(DEPLOYMENT)
    async with httpx.AsyncClient() as client:
        nobody = HttpDeployerClient(client, f"http://127.0.0.1:{free_port()}", "s", timeout=5)
        with pytest.raises(DeployerUnavailable, match="route lookup failed: ConnectError"):
            await nobody.route(DEPLOYMENT)
        with pytest.raises(DeployerUnavailable, match="serving lookup failed: ConnectError"):
            await nobody.serving_deployments()
        with pytest.raises(DeployerUnavailable, match="load report failed: ConnectError"):
            await nobody.report_load("gw-1", {DEPLOYMENT: 1.0})


async def test_the_serving_list_is_read_by_the_contract(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient
) -> None:
    fake, _ = scripted
    item = {
        "deployment_id": DEPLOYMENT,
        "owner_id": OWNER,
        "name": "iris",
        "version": "v3",
        "revision": 3,
        "endpoints": ["http://127.0.0.1:9/"],
    }
    fake.set("/internal/serving", [item])
    [serving] = await deployer.serving_deployments()
    assert (serving.name, serving.version, serving.endpoints) == (
        "iris",
        "v3",
        ("http://127.0.0.1:9",),
    )
    fake.set("/internal/serving", [{**item, "name": None}])
    with pytest.raises(DeployerUnavailable, match="serving lookup answered an unexpected body"):
        await deployer.serving_deployments()
    fake.set("/internal/serving", {"error": {"code": "internal"}}, status=500)
    with pytest.raises(DeployerUnavailable, match="serving lookup answered 500"):
        await deployer.serving_deployments()


async def test_a_load_report_is_sent_as_the_contract_says(
    scripted: tuple[ScriptedDeployer, str], deployer: HttpDeployerClient
) -> None:
    fake, _ = scripted
    fake.set("/internal/load", b"", status=204)
    await deployer.report_load("gw-1", {DEPLOYMENT: 2.5})
    assert fake.received[-1][0] == "/internal/load"
    assert fake.received[-1][2] == {"gateway": "gw-1", "in_flight": {DEPLOYMENT: 2.5}}
    # A figure the deployer would refuse is not sent at all.
    sent = len(fake.received)
    with pytest.raises(DeployerUnavailable, match="load report not sent"):
        await deployer.report_load("gw-1", {"not-a-deployment": 1.0})
    assert len(fake.received) == sent
    fake.set("/internal/load", {"error": {"code": "validation_failed"}}, status=422)
    with pytest.raises(DeployerUnavailable, match="load report answered 422"):
        await deployer.report_load("gw-1", {DEPLOYMENT: 2.5})


async def test_a_malformed_route_is_a_503_through_the_gateway_not_a_500(
    make_stack: Any, scripted: tuple[ScriptedDeployer, str]
) -> None:
    fake, url = scripted
    async with make_stack(deployer_url=url, predict_route_max_stale=0.0) as stack:
        fake.set(ROUTE_PATH, route_body(owner_id=stack.user_id, endpoints="http://x"))
        answer = await stack.client.post(
            f"/api/v1/predict/{DEPLOYMENT}", json={"instances": [[1]]}, headers=stack.bearer()
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "upstream_unavailable"


async def test_the_discovery_lists_serving_replicas_and_proxies_their_metrics(
    make_stack: Any, scripted: tuple[ScriptedDeployer, str]
) -> None:
    replica = FastAPI()

    @replica.get("/metrics")
    async def metrics() -> Response:
        return Response(b"kubeserve_up 1\n", media_type="text/plain")

    fake, url = scripted
    with serve_app(replica) as endpoint:
        fake.set(
            "/internal/serving",
            [
                {
                    "deployment_id": DEPLOYMENT,
                    "owner_id": OWNER,
                    "name": "iris",
                    "version": "v3",
                    "revision": 3,
                    "endpoints": [endpoint + "/"],
                }
            ],
        )
        async with make_stack(deployer_url=url) as stack:
            groups = (await stack.client.get("/internal/prometheus/targets")).json()
            [runtime] = [g for g in groups if g["labels"]["service"] == "runtime"]
            key = replica_key(endpoint)
            assert runtime["labels"]["tenant"] == OWNER
            assert runtime["labels"]["deployment"] == DEPLOYMENT
            assert runtime["labels"]["version"] == "v3"
            assert runtime["labels"]["replica"] == key
            scraped = await stack.client.get(runtime["labels"]["__metrics_path__"])
            assert scraped.status_code == 200, scraped.text
            assert scraped.text == "kubeserve_up 1\n"
