"""The command line every service binary shares: `serve`, `worker`, `migrate`.

kubeserve-registry serve --port 8082     # HTTP API and, unless --no-consume, its consumers
kubeserve-registry worker --port 9082    # consumers + outbox relay, health endpoints only
kubeserve-registry migrate               # apply migrations and exit (a Kubernetes Job)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from kubeserve_common.db.migrations import upgrade
from kubeserve_common.logging import configure_logging
from kubeserve_common.service import ServiceContainer
from kubeserve_common.web.app import create_service_app

Bootstrap = Callable[[], ServiceContainer]
AppFactory = Callable[..., FastAPI]  # (container, *, consume: bool) -> FastAPI


def service_main(
    name: str,
    bootstrap: Bootstrap,
    create_app: AppFactory,
    default_port: int,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"kubeserve-{name}", description=f"KubeServe {name}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API (and the consumers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)
    serve.add_argument("--no-consume", action="store_true", help="leave consumers to a worker")
    worker = sub.add_parser("worker", help="run the consumers and the outbox relay")
    worker.add_argument("--host", default="127.0.0.1")
    worker.add_argument("--port", type=int, default=default_port + 1000, help="health port")
    sub.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)

    container = bootstrap()
    configure_logging(container.settings.log_level, container.settings.log_json)
    if args.command == "migrate":
        asyncio.run(upgrade(container.migrations, container.settings.database_url, name))
        return
    if args.command == "serve":
        app = create_app(container, consume=not args.no_consume)
    else:
        app = create_service_app(container, title=f"KubeServe {name} worker")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        # Long-lived responses (event streams) must not hold a SIGTERM forever.
        timeout_graceful_shutdown=10,
    )
