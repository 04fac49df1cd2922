"""`GET /internal/prometheus/targets`: the http_sd document, and who may read it."""

from __future__ import annotations

from typing import Any


async def test_targets_list_every_platform_process_for_a_loopback_caller(make_stack: Any) -> None:
    async with make_stack(prometheus_scrape_address="gw.example:8080") as stack:
        answer = await stack.client.get("/internal/prometheus/targets")
        assert answer.status_code == 200, answer.text
        groups = answer.json()
        services = {g["labels"]["service"]: g for g in groups}
        assert set(services) == {"gateway", "auth", "registry", "builder", "deployer"}
        assert services["gateway"]["targets"] == ["gw.example:8080"]
        upstream_address = stack.upstream_url.removeprefix("http://")
        assert services["auth"]["targets"] == [upstream_address]
        for group in groups:
            assert group["labels"]["__metrics_path__"] == "/metrics"
        # The deployer cannot list replicas here (the echo upstream has no /internal/serving):
        # the platform's own targets are still listed.


async def test_one_platform_target_when_every_service_shares_the_process(make_stack: Any) -> None:
    async with make_stack(prometheus_single_process=True) as stack:
        groups = (await stack.client.get("/internal/prometheus/targets")).json()
        assert [g["labels"]["service"] for g in groups] == ["platform"]


async def test_forwarded_or_remote_callers_need_the_metrics_token(make_stack: Any) -> None:
    async with make_stack(metrics_token="s3cret-scrape-token") as stack:
        forwarded = {"x-forwarded-for": "203.0.113.9"}
        refused = await stack.client.get("/internal/prometheus/targets", headers=forwarded)
        assert refused.status_code == 401
        assert "KUBESERVE_METRICS_TOKEN" in refused.json()["error"]["message"]
        wrong = await stack.client.get(
            "/internal/prometheus/targets", headers={**forwarded, "authorization": "Bearer no"}
        )
        assert wrong.status_code == 401
        allowed = await stack.client.get(
            "/internal/prometheus/targets",
            headers={**forwarded, "authorization": "Bearer s3cret-scrape-token"},
        )
        assert allowed.status_code == 200
        # A replica that is not serving: 404 in the JSON envelope, not a 500.
        missing = await stack.client.get(
            "/internal/prometheus/replicas/00000000-0000-0000-0000-000000000000/abc/metrics"
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"]
