"""The prediction part of the public OpenAPI document against the model runtime itself: every
runtime route the gateway forwards is documented, nothing is documented that no route serves,
and the document is valid OpenAPI 3.1 with each error status pointing at a body."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from kubeserve_gateway.domain.routes import RouteTable, default_routes
from kubeserve_gateway.services.openapi import OpenApiService
from kubeserve_gateway.services.openapi_predict import prediction_paths
from kubeserve_runtime import create_app
from openapi_spec_validator import validate

BASE = "/api/v1/predict/{deployment_id}"
DEPLOYMENT = "3f2a6c1e-0000-4000-8000-000000000001"
_PARAM = re.compile(r"\{([^/}]+)\}")


def _runtime_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of the runtime app, included routers too."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _runtime_routes(included.routes, prefix + getattr(context, "prefix", ""))
            continue
        for method in route.methods or ():
            if method != "HEAD":  # Starlette's implicit HEAD of a GET, not a route of its own
                yield method, prefix + route.path


def _fill(template: str) -> str:
    return _PARAM.sub(lambda m: DEPLOYMENT if m[1] == "deployment_id" else "iris", template)


def _forwarded() -> set[tuple[str, str]]:
    """(method, public template) of each runtime route a client can reach through the gateway:
    the route table sends the public path to the runtime under exactly that route's path."""
    table = RouteTable(default_routes())
    app = create_app("/nonexistent/model.joblib", "iris")  # routes only; nothing is loaded
    found: set[tuple[str, str]] = set()
    for method, path in _runtime_routes(app.routes):
        for public in {(BASE + path).rstrip("/"), BASE}:  # `/` of the runtime is BASE
            match = table.match(method, _fill(public))
            if (
                match is not None
                and match.route.upstream == "runtime"
                and match.upstream_path in (_fill(path), _fill(path) + "/")
            ):
                found.add((method, public))
    return found


def test_every_forwarded_runtime_route_is_documented_and_nothing_else() -> None:
    documented = {
        (method.upper(), path) for path, item in prediction_paths().items() for method in item
    }
    forwarded = _forwarded()
    # The probe sees the routes the issue names (else it would pass by finding nothing).
    assert {
        ("GET", f"{BASE}/v1/models"),
        ("POST", f"{BASE}/v1/models/{{model_name}}:explain"),
        ("POST", f"{BASE}/v2/repository/index"),
        ("POST", BASE),
        ("GET", BASE),
    } <= forwarded
    assert forwarded - documented == set(), "runtime routes the gateway forwards, undocumented"
    assert documented - forwarded == set(), "documented prediction routes no runtime serves"
    # /healthz, /readyz and /metrics of a replica are not reachable through the gateway.
    assert not any(path.endswith(("/healthz", "/readyz", "/metrics")) for _, path in forwarded)


def test_the_prediction_document_is_valid_and_every_error_has_a_body() -> None:
    service = OpenApiService(
        routes=RouteTable(default_routes()), upstreams={}, fetch=_unused, ttl=60
    )
    doc = service.merge({}, [])
    validate(doc)  # raises on an invalid OpenAPI 3.1 document
    responses = doc["components"]["responses"]
    explain = doc["paths"][f"{BASE}/v1/models/{{model_name}}:explain"]["post"]
    assert explain["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExplainResponse"
    }
    assert explain["responses"]["501"] == {"$ref": "#/components/responses/prediction_501"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["security"], (method, path)  # predictions need credentials
            for status, answer in operation["responses"].items():
                if "$ref" in answer:
                    answer = responses[answer["$ref"].rsplit("/", 1)[1]]
                schema = answer["content"]["application/json"]["schema"]
                if status != "200":
                    assert schema == {"$ref": "#/components/schemas/PredictionError"}, (
                        method,
                        path,
                        status,
                    )


async def _unused(url: str) -> Any:
    raise AssertionError(f"no upstream is fetched here: {url}")
