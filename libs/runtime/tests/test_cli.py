"""`python -m kubeserve_runtime` serves a model file as a separate process."""

from __future__ import annotations

import subprocess
import sys

import httpx
import joblib
from kubeserve_common.testing.servers import free_port, wait_until_ready


def test_cli_serves_a_model_file(tmp_path, iris_pipeline) -> None:
    joblib.dump(iris_pipeline, tmp_path / "model.joblib")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubeserve_runtime",
            "--model",
            str(tmp_path),
            "--name",
            "iris",
            "--version",
            "v4",
            "--port",
            str(port),
            "--max-batch-size",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", proc)
        response = httpx.post(
            f"{url}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10
        )
        assert response.json()["predictions"] == [0]
        assert httpx.get(f"{url}/v2/models/iris", timeout=5).json()["versions"] == ["v4"]
    finally:
        proc.terminate()
        proc.wait(30)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert proc.returncode in (0, -15)
    assert "Application shutdown complete" in proc.stdout.read().decode()


def test_cli_fails_loudly_on_a_bad_model(tmp_path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubeserve_runtime",
            "--model",
            str(tmp_path),
            "--name",
            "x",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "model.joblib is empty" in result.stderr
