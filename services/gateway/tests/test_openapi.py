"""The public OpenAPI document merged from the upstreams, and its Swagger UI."""

from __future__ import annotations

from typing import Any

from kubeserve_common.testing.servers import free_port


async def test_public_paths_are_published_under_api_v1(stack: Any) -> None:
    r = await stack.client.get("/api/v1/openapi.json")  # no credentials needed
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    predictions = {p for p in paths if p.startswith("/api/v1/predict/")}
    assert "/api/v1/predict/{deployment_id}" in predictions
    assert "/api/v1/predict/{deployment_id}/v2/models/{model_name}/infer" in predictions
    assert set(paths) - predictions == {
        "/api/v1/models",
        "/api/v1/models/{model_id}/versions",
        "/api/v1/deployments/{deployment_id}",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
    }  # /internal/..., /healthz and /openapi.json stay private
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    assert {"bearerAuth": []} in paths["/api/v1/auth/me"]["get"]["security"]
    assert "parameters" not in paths["/api/v1/auth/me"]["get"]  # no x-kubeserve-principal
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"
    assert "Thing" in doc["components"]["schemas"]
    # Errors are documented as the envelope the services send, not FastAPI's `detail` list.
    me = paths["/api/v1/auth/me"]["get"]["responses"]
    assert me["401"] == {"$ref": "#/components/responses/error_401"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    envelope = doc["components"]["responses"]["error_422"]["content"]["application/json"]
    assert envelope["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    limited = doc["components"]["responses"]["error_429"]["headers"]
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} == set(
        limited
    )
    assert "x-kubeserve-unavailable" not in doc


async def test_a_service_that_is_down_is_left_out(make_stack: Any) -> None:
    async with make_stack(deployer_url=f"http://127.0.0.1:{free_port()}") as stack:
        r = await stack.client.get("/api/v1/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        assert doc["x-kubeserve-unavailable"] == ["deployer"]
        assert "/api/v1/models" in doc["paths"]


async def test_docs_page_points_at_the_public_document(stack: Any) -> None:
    r = await stack.client.get("/docs")
    assert r.status_code == 200
    assert "/api/v1/openapi.json" in r.text
    assert (await stack.client.get("/openapi.json")).status_code == 404
