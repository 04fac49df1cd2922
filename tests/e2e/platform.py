"""Start KubeServe for end-to-end tests: the distributed path (each service its own process,
real PostgreSQL, RabbitMQ and an S3 server) or the embedded path (`kubeserve up`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kubeserve_common.net import free_port

SERVICES = ("auth", "registry", "builder", "deployer", "gateway")


@dataclass
class Platform:
    url: str
    home: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    # distributed only: each service's port and the environment they all start with
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start (or start again, after a kill) one service of a distributed platform; its
        output goes on at the end of its log."""
        self.spawn(name)
        self.wait_ready(name)

    def spawn(self, name: str) -> None:
        log = self.home / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(
            [_script(f"kubeserve-{name}"), "serve", "--port", str(self.ports[name])],
            env=self.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = proc

    def wait_ready(self, name: str) -> None:
        _wait_ready(f"http://127.0.0.1:{self.ports[name]}", self.processes[name])

    def kill9(self, name: str) -> None:
        """`kill -9` of one service's process (what a crash or an OOM kill does)."""
        proc = self.processes[name]
        proc.kill()
        proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)


def _script(name: str) -> str:
    """A console script of this virtual environment."""
    return str(Path(sys.executable).parent / name)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode} during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def distributed(
    home: Path,
    *,
    database_url: str,
    amqp_url: str,
    bus_prefix: str,
    s3_url: str,
    bucket: str,
    env: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """The five services as processes; `env` adds or overrides `KUBESERVE_*` settings."""
    ports = {name: free_port() for name in SERVICES}
    environment = {
        **_clean_env(),
        "KUBESERVE_DEV_MODE": "true",
        "KUBESERVE_HOME": str(home),
        "KUBESERVE_DATABASE_URL": database_url,
        "KUBESERVE_BROKER_URL": amqp_url,
        "KUBESERVE_BUS_PREFIX": bus_prefix,
        "KUBESERVE_INTERNAL_SECRET": "e2e-internal-secret-0123456789abcdef",
        "KUBESERVE_ARTIFACT_STORE_URL": f"s3://{bucket}",
        "KUBESERVE_S3_ENDPOINT_URL": s3_url,
        "KUBESERVE_S3_ACCESS_KEY_ID": "testing",
        "KUBESERVE_S3_SECRET_ACCESS_KEY": "testing",
        "KUBESERVE_LOG_LEVEL": "INFO",
        "KUBESERVE_STOP_REPLICAS_ON_EXIT": "true",
        **{
            f"KUBESERVE_{name.upper()}_URL": f"http://127.0.0.1:{port}"
            for name, port in ports.items()
        },
        **(env or {}),
    }
    platform = Platform(
        url=f"http://127.0.0.1:{ports['gateway']}", home=home, ports=ports, env=environment
    )
    try:
        # All at once: each start is mostly imports, which overlap on a machine's cores.
        for name in SERVICES:
            platform.spawn(name)
        for name in SERVICES:
            platform.wait_ready(name)
        yield platform
    finally:
        for name in reversed(SERVICES):
            if name in platform.processes:
                _stop(platform.processes[name])


@contextlib.contextmanager
def embedded(home: Path, env: dict[str, str] | None = None) -> Iterator[Platform]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "kubeserve-up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeserve_cli", "up", "--port", str(port), "--home", str(home)],
        env={**_clean_env(), "KUBESERVE_STOP_REPLICAS_ON_EXIT": "true", **(env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    platform = Platform(
        url=f"http://127.0.0.1:{port}", home=home, processes={"up": proc}, logs={"up": log}
    )
    try:
        _wait_ready(platform.url, proc)
        yield platform
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
