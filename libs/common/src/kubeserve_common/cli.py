"""The command line every service binary shares: `serve`, `worker`, `migrate`, `dlq`.

kubeserve-registry serve --port 8082     # HTTP API and, unless --no-consume, its consumers
kubeserve-registry worker --port 9082    # consumers + outbox relay, health endpoints only
kubeserve-registry migrate               # apply migrations and exit (a Kubernetes Job)
kubeserve-registry dlq list              # dead-lettered messages of this service's queues
kubeserve-registry dlq replay [--queue Q] # put them back into their queues for another try
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from kubeserve_common.db.migrations import upgrade
from kubeserve_common.logging import configure_logging
from kubeserve_common.service import ServiceContainer
from kubeserve_common.web.app import create_service_app
from kubeserve_common.web.server import Server

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
    dlq = sub.add_parser("dlq", help="list or replay dead-lettered messages")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--queue", help="only this queue (q.<svc>.<purpose>); default: all")
    args = parser.parse_args(argv)

    container = bootstrap()
    configure_logging(container.settings.log_level, container.settings.log_json)
    if args.command == "migrate":
        asyncio.run(upgrade(container.migrations, container.settings.database_url, name))
        return
    if args.command == "dlq":
        raise SystemExit(asyncio.run(dead_letters(container, args.action, args.queue)))
    if args.command == "serve":
        app = create_app(container, consume=not args.no_consume)
    else:
        app = create_service_app(container, title=f"KubeServe {name} worker")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        # Long-lived responses (event streams) must not hold a SIGTERM forever.
        timeout_graceful_shutdown=10,
    )
    Server(config).run()


async def dead_letters(container: ServiceContainer, action: str, only: str | None) -> int:
    """`dlq list` prints one JSON line per dead letter (queue, event id and type, reason,
    attempts); `dlq replay` moves them back into their queues and prints how many. Embedded
    mode keeps them in `{home}/db/bus.db`: run it while `kubeserve up` is stopped, and the
    replayed messages are delivered at its next start."""
    bus = container.bus
    if container.settings.broker_url.startswith("memory://"):
        from kubeserve_common.messaging.durable import DurableQueueStore
        from kubeserve_common.messaging.memory import InMemoryBus

        path = container.settings.home / "db" / "bus.db"
        bus = InMemoryBus(container.name, container.topology, store=DurableQueueStore(path))
    queues = sorted(
        c.subscription.queue for c in container.consumers if not c.subscription.transient
    )
    if only is not None:
        if only not in queues:
            print(f"unknown queue {only!r}; this service consumes: {', '.join(queues)}")
            return 2
        queues = [only]
    await bus.connect()
    try:
        for queue in queues:
            if action == "replay":
                count = await bus.replay_dead_letters(queue)
                print(json.dumps({"queue": queue, "replayed": count}))
                continue
            for letter in await bus.dead_letters(queue):
                print(
                    json.dumps(
                        {
                            "queue": queue,
                            **_describe(letter.body),
                            "reason": letter.reason,
                            "attempts": letter.attempts,
                        }
                    )
                )
    finally:
        await bus.close()
    return 0


def _describe(body: bytes) -> dict[str, object]:
    try:
        event = json.loads(body)
        return {"event_id": event.get("id"), "type": event.get("type")}
    except (ValueError, AttributeError):
        return {"event_id": None, "type": None, "body": body[:200].decode("utf-8", "replace")}
