"""The embedded mode: all five services in one process, with SQLite files under the KubeServe
home, the in-process bus and the local artifact directory. Same composition roots as the
distributed mode (each service's `bootstrap()`); only the settings differ."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from kubeserve_common.logging import service_var
from kubeserve_common.messaging.durable import DurableQueueStore
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.net import free_port
from kubeserve_common.service import ServiceContainer
from kubeserve_common.web.server import Server

log = logging.getLogger("kubeserve.embedded")

# Start order: the gateway last, so it only accepts traffic once everything behind it runs.
SERVICES = ("auth", "registry", "builder", "deployer", "gateway")


@dataclass
class EmbeddedService:
    name: str
    port: int
    container: ServiceContainer
    app: Any


class _QuietServer(Server):
    """Several servers share one process: signals are handled once, by the runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is KubeServe already running? "
                "Choose another port with --port"
            ) from None


def apply_sandbox_opt_out(insecure_no_sandbox: bool) -> bool:
    """`kubeserve up --insecure-no-sandbox` (or KUBESERVE_INSECURE_NO_SANDBOX=1): every service
    of this process reads the one setting; the warning is printed once, here, at start."""
    from kubeserve_common.security.sandbox_opt_out import OPT_OUT_ENV, opted_out
    from kubeserve_common.security.sandbox_opt_out import warn_insecure_once as warn

    if insecure_no_sandbox:
        os.environ[OPT_OUT_ENV] = "1"
    if not opted_out():
        return False
    warn()
    return True


def service_settings(
    name: str, home: Path, ports: dict[str, int], host: str, overrides: dict[str, Any]
) -> Any:
    module = importlib.import_module(f"kubeserve_{name}.settings")
    cls = getattr(module, f"{name.capitalize()}Settings")
    urls = {
        f"{svc}_url": f"http://{host if svc == 'gateway' else '127.0.0.1'}:{port}"
        for svc, port in ports.items()
    }
    return cls(
        dev_mode=True,
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'db' / f'{name}.db'}",
        broker_url="memory://",
        **urls,
        **overrides,
    )


def build(
    home: Path, host: str, gateway_port: int, overrides: dict[str, Any] | None = None
) -> tuple[InMemoryBus, list[EmbeddedService]]:
    home.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in SERVICES if name != "gateway"}
    ports["gateway"] = gateway_port
    # Durable queues in an SQLite file: a delivery is kept until its consumer's inbox commit,
    # so a crash (even kill -9) at any moment loses nothing; the next start redelivers.
    bus = InMemoryBus("embedded", store=DurableQueueStore(home / "db" / "bus.db"))
    services = []
    for name in SERVICES:
        settings = service_settings(name, home, ports, host, overrides or {})
        container = importlib.import_module(f"kubeserve_{name}.bootstrap").bootstrap(
            settings, bus=bus
        )
        app = importlib.import_module(f"kubeserve_{name}.main").create_app(
            container, manage_container=False
        )
        services.append(EmbeddedService(name, ports[name], container, app))
    return bus, services


async def run(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Run until `stop` is set (or SIGINT/SIGTERM); `on_ready` gets the public URL."""
    _check_port_free(host, port)
    # One process on a laptop: Ctrl+C stops the model replicas too (the next `kubeserve up`
    # starts them again from the recorded desired state).
    # One process serves every service's metrics: the gateway's Prometheus discovery lists it
    # once (docs/observability.md).
    overrides = {
        "stop_replicas_on_exit": True,
        "prometheus_single_process": True,
        **(overrides or {}),
    }
    bus, services = build(home, host, port, overrides)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    await bus.connect()
    started: list[EmbeddedService] = []
    servers: list[tuple[_QuietServer, asyncio.Task[None]]] = []
    try:
        for svc in services:
            token = service_var.set(svc.name)
            try:
                await svc.container.start()
            finally:
                service_var.reset(token)
            started.append(svc)
            bind = host if svc.name == "gateway" else "127.0.0.1"
            server = _QuietServer(
                uvicorn.Config(
                    svc.app,
                    host=bind,
                    port=svc.port,
                    log_config=None,
                    access_log=False,
                    # Long-lived responses (event streams) must not hold a Ctrl+C forever.
                    timeout_graceful_shutdown=10,
                )
            )
            task = asyncio.create_task(server.serve(), name=f"http-{svc.name}")
            servers.append((server, task))
            while not server.started:
                if task.done():
                    task.result()  # raises the reason (e.g. the port is taken)
                    raise RuntimeError(f"{svc.name} stopped during start-up")
                await asyncio.sleep(0.02)
        url = f"http://{host}:{port}"
        if on_ready:
            on_ready(url)
        await stop.wait()
    finally:
        for server, _ in servers:
            server.should_exit = True
        for _, task in servers:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        for svc in reversed(started):
            with contextlib.suppress(Exception):
                await svc.container.stop()
        await bus.close()
