"""`kubeserve up` as a user runs it: one process, SQLite files and the in-process bus under the
given home, the gateway answering on the given port, a clean stop on Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from kubeserve_common.net import free_port


def test_kubeserve_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeserve_cli", "up", "--port", str(port), "--home", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "KubeServe is running" in line:
                break
        assert any("KubeServe is running" in line for line in output), "".join(output)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        for service in ("gateway", "auth", "registry", "builder", "deployer"):
            assert (tmp_path / "db" / f"{service}.db").exists(), f"no SQLite file for {service}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        output.append(rest or "")
    assert proc.returncode == 0, "".join(output)
    assert "Traceback" not in "".join(output), "".join(output)
