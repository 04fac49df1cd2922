"""A real replica's `/metrics` passes `promtool check metrics` (Prometheus's own linter), and
the seed's `prediction_latency_ms` would not - which is why the runtime exposes the compliant
`kubeserve_prediction_duration_seconds` instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import joblib
import pytest
from kubeserve_common.testing.servers import free_port, wait_until_ready


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install -y prometheus)")
    return found


def _check(promtool: str, exposition: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_replicas_metrics_pass_promtool(tmp_path, iris_pipeline) -> None:
    promtool = _promtool()
    joblib.dump(iris_pipeline, tmp_path / "model.joblib")
    port = free_port()
    env = {**os.environ, "KUBESERVE_TENANT_ID": "user-1", "KUBESERVE_DEPLOYMENT_ID": "dep-1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeserve_runtime", "--model", str(tmp_path), "--name", "iris",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", proc)
        for body in ({"instances": [[1, 2, 3, 4]]}, {"instances": [[1, 2]]}):
            httpx.post(f"{url}/predict", json=body, timeout=10)
        exposition = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        proc.terminate()
        proc.wait(30)
    lines = exposition.splitlines()
    for name in ("kubeserve_prediction_duration_seconds_count", "kubeserve_replica_cpu_seconds"):
        assert any(ln.startswith(name) and 'tenant="user-1"' in ln for ln in lines), name
    result = _check(promtool, exposition)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_promtool_rejects_the_abbreviated_unit() -> None:
    promtool = _promtool()
    old = (
        "# HELP prediction_latency_ms Time to answer a prediction request\n"
        "# TYPE prediction_latency_ms histogram\n"
        'prediction_latency_ms_bucket{le="+Inf"} 1\n'
        "prediction_latency_ms_sum 1.5\nprediction_latency_ms_count 1\n"
    )
    result = _check(promtool, old)
    assert result.returncode != 0
    assert "prediction_latency_ms" in result.stdout + result.stderr
