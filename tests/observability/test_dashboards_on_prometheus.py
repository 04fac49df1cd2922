"""The operator's view, proven on a real Prometheus (Debian's `prometheus` package): it scrapes
the embedded platform through the gateway's discovery endpoint only, and after real traffic
every query of every provisioned dashboard returns data - CPU per user included. Queries on
series that exist only on Kubernetes (cAdvisor, kube-state-metrics) are listed by panel title
in `CLUSTER_ONLY` and skipped by name. Also: every discovered target's exposition passes
`promtool check metrics`, and the rule files pass `promtool check rules` and evaluate."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubeserve_common.net import free_port
from kubeserve_common.testing.promtool import check_metrics, check_rules
from kubeserve_sdk import APIError, Client

from deploy.grafana.master_dashboard import CLUSTER_ONLY
from tests.e2e.platform import Platform, embedded
from tests.e2e.test_journey import SAMPLES, iris_model

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
# Series that exist only once something failed (a counter child appears with its first
# increment): skipped by (panel title, metric). The master dashboard writes `or vector(0)` instead.
FAILURE_ONLY = {
    ("Error rate (5xx share)", "kubeserve_http_requests_total"),
    ("Dead-lettered (last hour)", "kubeserve_consumer_messages_total"),
    ("Outbox pending rows", "kubeserve_outbox_publish_failures_total"),
}
# Grafana's variables, as an operator's "All" selection would expand them.
VARIABLES = {"$__rate_interval": "20s", "${datasource}": "", "$service": ".*", "$deployment": ".*"}


def dashboard_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((path.name, panel["title"], expr))
    return found


@contextlib.contextmanager
def prometheus(home: Path, gateway: str) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: apt-get install -y prometheus"
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULES],
        "scrape_configs": [
            {
                "job_name": "kubeserve",
                "honor_labels": True,
                "http_sd_configs": [
                    {"url": f"{gateway}/internal/prometheus/targets", "refresh_interval": "1s"}
                ],
            }
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (home / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 60, "ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def traffic(platform: Platform, workdir: Path) -> tuple[Client, str, str]:
    """A tenant pushes and deploys a model, predicts (200s) and sends bad input (4xx)."""
    client = Client(platform.url)
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    client.register(email, "an operator passphrase 42")
    client.login(email, "an operator passphrase 42")
    model = client.create_model("iris", framework="sklearn")
    version = client.push(model["id"], iris_model(workdir / "iris.joblib"))
    version = client.wait_for_version(model["id"], version["id"], timeout=180)
    assert version["status"] == "Ready", version
    deployment = client.wait_for_deployment(client.deploy(version["id"])["id"], timeout=180)
    assert deployment["status"] == "Running", deployment
    return client, client.me()["id"], deployment["id"]


def predict_some(client: Client, deployment_id: str) -> None:
    for _ in range(10):
        client.predict(deployment_id, {"instances": SAMPLES})
    for _ in range(3):
        with pytest.raises(APIError) as bad:
            client.predict(deployment_id, {"instances": "not rows"})
        assert 400 <= bad.value.status < 500


def test_rule_files_pass_promtool() -> None:
    assert RULES, "no rule file under deploy/prometheus/rules"
    result = check_rules(*RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    groups = [g for p in RULES for g in yaml.safe_load(p.read_text())["groups"]]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    for wanted in ("ErrorBudgetBurn", "PredictionLatencyHigh", "OutboxLag", "DeadLetters",
                   "BuildQueueOld"):  # fmt: skip
        assert any(wanted in a for a in alerts), wanted


def test_every_dashboard_query_returns_data_on_a_real_prometheus(tmp_path: Path) -> None:
    with embedded(tmp_path / "home") as platform:
        owner, tenant, deployment_id = traffic(platform, tmp_path)
        targets = httpx.get(f"{platform.url}/internal/prometheus/targets", timeout=10).json()
        by_service: dict[str, list[dict[str, Any]]] = {}
        for group in targets:
            by_service.setdefault(group["labels"]["service"], []).append(group)
        assert set(by_service) == {"platform", "runtime"}, targets
        (replica,) = by_service["runtime"]
        assert replica["labels"]["tenant"] == tenant
        assert replica["labels"]["deployment"] == deployment_id
        assert replica["labels"]["version"] == "v1"
        for group in targets:
            labels = group["labels"]
            url = f"{labels['__scheme__']}://{group['targets'][0]}{labels['__metrics_path__']}"
            body = httpx.get(url, timeout=10)
            assert body.status_code == 200, (url, body.text)
            assert check_metrics(body.text) == "", (labels["service"], check_metrics(body.text))

        with prometheus(tmp_path, platform.url) as prom:
            _wait(
                lambda: len(query(prom, "up == 1")) == len(targets), 60, "every target scraped"
            )
            missing: list[str] = []
            deadline = time.monotonic() + 90
            while True:
                predict_some(owner, deployment_id)
                missing = [
                    f"{name}: {title}: {expr}"
                    for name, title, expr in dashboard_queries()
                    if title not in CLUSTER_ONLY
                    and not any(title == t and m in expr for t, m in FAILURE_ONLY)
                    and not query(prom, expr)
                ]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert not missing, "queries without data:\n" + "\n".join(missing)
            # CPU per user is per tenant, for this tenant.
            cpu = query(prom, "sum by (tenant) (rate(kubeserve_replica_cpu_seconds_total[20s]))")
            assert {r["metric"]["tenant"] for r in cpu} == {tenant}
            # The recording rules evaluate on the same data.
            for record in (
                "kubeserve:gateway_requests:rate5m",
                "kubeserve:replica_cpu_seconds:rate5m",
            ):
                _wait(lambda r=record: bool(query(prom, r)), 30, record)
            rules = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
            assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules

