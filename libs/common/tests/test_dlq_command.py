"""`kubeserve-<svc> dlq list|replay` against a real RabbitMQ: a poison message of one of the
service's queues is listed with its reason, then replayed and handled once the cause is fixed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kubeserve_common.cli import dead_letters
from kubeserve_common.errors import PermanentError
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.service import build_container
from kubeserve_common.settings import CommonSettings
from kubeserve_common.testing.plugin import delete_topology
from kubeserve_common.testing.waiting import wait_until

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "gateway" / "migrations"


async def test_dlq_list_then_replay(
    tmp_path: Path, amqp_url: str, bus_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = CommonSettings(
        dev_mode=True,
        home=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        broker_url=amqp_url,
        bus_prefix=bus_prefix,
    )
    container = build_container("gateway", settings, MIGRATIONS)
    fixed = False
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        if not fixed:
            raise PermanentError("cannot handle users yet")
        handled.append(event.id)

    container.subscribe("users", [UserRegistered.event_type()], handler)
    await container.start()
    queue = container.consumers[0].subscription.queue
    try:
        payload = UserRegistered(user_id=uuid.uuid4(), email="d@example.com", role="user")
        poison = CloudEvent.create(payload, service="test")
        await container.bus.publish(poison)

        async def dead() -> bool:
            return len(await container.bus.dead_letters(queue)) == 1

        await wait_until(dead, message="the dead letter")
        # The command runs in its own process: a container of its own, never started.
        command = build_container("gateway", settings, MIGRATIONS)
        command.subscribe("users", [UserRegistered.event_type()], handler)
        capsys.readouterr()
        assert await dead_letters(command, "list", None) == 0
        [line] = capsys.readouterr().out.splitlines()
        listed = json.loads(line)
        assert listed["queue"] == queue and listed["event_id"] == poison.id
        assert listed["type"] == UserRegistered.event_type()
        assert "cannot handle users yet" in listed["reason"]

        assert await dead_letters(command, "list", "q.nope") == 2  # names the real queues
        assert queue in capsys.readouterr().out

        fixed = True
        assert await dead_letters(command, "replay", queue) == 0
        assert json.loads(capsys.readouterr().out) == {"queue": queue, "replayed": 1}
        await wait_until(lambda: handled == [poison.id], message="the replayed message handled")
        assert await container.bus.dead_letters(queue) == []
    finally:
        declared = set(getattr(container.bus, "declared_queues", set()))
        await container.stop()
        await delete_topology(amqp_url, Topology(bus_prefix), declared)
