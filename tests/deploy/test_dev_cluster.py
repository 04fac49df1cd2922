"""scripts/dev-cluster.sh (the kind data center) cannot run here (no Docker): it is linted with
shellcheck, its plan is checked in DRY_RUN mode, and the files it writes are checked for real:
the kind config parses and the platform values render with the real chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.test_charts import CHARTS, find, render

REPO = CHARTS.parent
SCRIPT = REPO / "scripts" / "dev-cluster.sh"


def test_every_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install -y shellcheck"
    scripts = sorted((REPO / "scripts").glob("*.sh"))
    assert SCRIPT in scripts
    result = subprocess.run(
        [shellcheck, "--severity=warning", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def _plan(tmp_path: Path) -> tuple[list[str], Path]:
    state = tmp_path / "state"
    result = subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "DRY_RUN": "1", "STATE": str(state)},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")], state


def test_the_plan_builds_the_data_center_in_order(tmp_path: Path) -> None:
    plan, _ = _plan(tmp_path)
    text = "\n".join(plan)

    def first(fragment: str) -> int:
        return next(i for i, line in enumerate(plan) if fragment in line)

    order = [
        "docker compose up -d image-registry",
        "kind create cluster",
        "docker network connect kind kubeserve-registry",
        "docker push localhost:5000/kubeserve/gateway:dev",
        "upgrade --install ingress-nginx ingress-nginx/ingress-nginx",
        "upgrade --install kube-prometheus-stack",
        "upgrade --install minio",
        "upgrade --install kubeserve charts/kubeserve",
        "pytest tests/k8s -m k8s",
    ]
    positions = [first(step) for step in order]
    assert positions == sorted(positions), plan
    for image in ("gateway", "auth", "registry", "builder", "deployer", "runtime-base"):
        assert f"docker push localhost:5000/kubeserve/{image}:dev" in text
    assert "kubectl apply" not in text.replace("--kubeconfig", "")  # add-ons via Helm only


def test_the_written_kind_config_and_platform_values_are_valid(tmp_path: Path) -> None:
    _, state = _plan(tmp_path)
    kind = yaml.safe_load((state / "kind.yaml").read_text())
    assert kind["kind"] == "Cluster"
    assert "/etc/containerd/certs.d" in kind["containerdConfigPatches"][0]
    (node,) = kind["nodes"]
    assert node["labels"]["ingress-ready"] == "true"
    # The platform values the script installs render with the real chart (schema included).
    values = yaml.safe_load((state / "values.yaml").read_text())
    values["secrets"]["jwtPrivateKey"] = (
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"
    )
    objects = render("kubeserve", values)
    images = {
        c["image"]
        for d in find(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert "localhost:5000/kubeserve/gateway:dev" in images, images
    assert find(objects, "PrometheusRule") and find(objects, "ServiceMonitor")
