"""The gateway's request metrics name the public endpoint (a bounded route template, never an
id) and its whole /metrics exposition passes `promtool check metrics`."""

from __future__ import annotations

import re
import uuid
from typing import Any

from kubeserve_common.testing.promtool import check_metrics
from kubeserve_gateway.domain.route_labels import route_label
from kubeserve_gateway.domain.routes import RouteTable, default_routes

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def routes_counted(exposition: str) -> dict[str, float]:
    counted: dict[str, float] = {}
    for line in exposition.splitlines():
        if line.startswith("kubeserve_http_requests_total{") and 'service="gateway"' in line:
            route = re.search(r'route="([^"]*)"', line)
            assert route is not None
            counted[route.group(1)] = counted.get(route.group(1), 0) + float(line.split()[-1])
    return counted


async def test_requests_are_counted_by_route_template_without_ids(stack: Any) -> None:
    model, other = uuid.uuid4(), uuid.uuid4()
    for path in (
        f"/api/v1/models/{model}/versions/v3",
        f"/api/v1/models/{other}/versions/v12",
        f"/api/v1/deployments/{model}",
        "/api/v1/models",
    ):
        answer = await stack.client.get(path, headers=stack.bearer())
        assert answer.status_code == 200, path
    await stack.client.get(f"/api/v1/nothing/{uuid.uuid4()}", headers=stack.bearer())

    exposition = (await stack.client.get("/metrics")).text
    counted = routes_counted(exposition)
    assert counted.get("/api/v1/models/{id}/versions/{version}", 0) >= 2
    assert counted.get("/api/v1/deployments/{id}", 0) >= 1
    assert counted.get("/api/v1/models", 0) >= 1
    assert "unmatched" in counted  # the unknown path, without its id
    for route in counted:
        assert not UUID.search(route), route
    assert "/api/v1/{path:path}" not in counted
    assert check_metrics(exposition) == ""


def test_route_templates_stay_bounded() -> None:
    table = RouteTable(default_routes())
    dep = str(uuid.uuid4())
    assert (
        route_label(table, "POST", f"/api/v1/predict/{dep}/v2/models/iris-prod/infer")
        == "/api/v1/predict/{deployment_id}/v2/models/{name}/infer"
    )
    assert route_label(table, "POST", f"/api/v1/predict/{dep}") == (
        "/api/v1/predict/{deployment_id}"
    )
    assert route_label(table, "POST", f"/api/v1/predict/{dep}/v1/models/iris:predict") == (
        "/api/v1/predict/{deployment_id}/v1/models/{name}:predict"
    )
    # Tenant-chosen names and long junk paths collapse into the same few values.
    labels = {
        route_label(table, "GET", f"/api/v1/models/{uuid.uuid4()}/{word}/x/y/z/a/b/c/d/e/f")
        for word in ("alpha", "beta", "gamma")
    }
    assert len(labels) == 1 and next(iter(labels)).endswith("/...")
    assert route_label(table, "GET", "/api/v1/unknown-place") == "unmatched"
