"""`kubeserve up` as a user runs it: one process, SQLite files and the in-process bus under the
given home, secrets generated in it, the gateway answering on the given port, a clean stop on
Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from kubeserve_common.net import free_port
from kubeserve_common.security.principal import Principal
from kubeserve_common.security.secrets import PUBLIC_SECRETS
from kubeserve_gateway.domain.tickets import TicketIssuer


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
        # A fresh home gets its own secrets, private to the platform's user.
        internal = tmp_path / "secrets" / "internal-secret"
        signing_key = tmp_path / "auth" / "jwt-signing-key.pem"
        for secret in (internal, signing_key):
            assert secret.stat().st_mode & 0o777 == 0o600, secret
        assert internal.read_text() not in PUBLIC_SECRETS
        # What the public default used to allow: an events ticket forged with it is refused.
        forged, _ = TicketIssuer("dev-internal-secret-change-me").issue(
            Principal(user_id=uuid.uuid4())
        )
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/events?ticket={forged}", timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
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
