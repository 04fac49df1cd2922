"""`kubeserve_build_queue_oldest_seconds` on the builder's `/metrics` (the KubeServeBuildQueueOld
alert reads it): the age of the build that has waited longest to be claimed, 0 when none waits,
served by a real builder on PostgreSQL over HTTP, and an exposition promtool accepts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from builder_helpers import queue_builds
from kubeserve_builder.main import create_app
from kubeserve_builder.repositories.builds import BuildRepository
from kubeserve_common.db.base import utcnow
from kubeserve_common.testing.promtool import check_metrics
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.testing.waiting import wait_until

METRIC = "kubeserve_build_queue_oldest_seconds"


def sample(exposition: str) -> float:
    values = [line.split()[1] for line in exposition.splitlines() if line.startswith(METRIC + " ")]
    assert len(values) == 1, f"one unlabelled {METRIC} sample expected in:\n{exposition}"
    return float(values[0])


async def test_the_builder_exports_how_long_the_oldest_waiting_build_has_waited(
    start_builder: Any,
) -> None:
    builder = await start_builder()
    await builder.container.loop.stop()  # nothing claims: queued builds keep waiting
    app = create_app(builder.container, consume=False, manage_container=False)
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def age() -> float:
                return sample((await client.get("/metrics")).text)

            assert await age() == 0  # an empty queue

            now = utcnow()
            # Waiting 5 minutes and 1 minute; one more still inside its retry delay (not
            # claimable yet, so not waiting) although queued 20 minutes ago.
            await queue_builds(builder.container, uuid.uuid4(), 1, now - timedelta(minutes=5))
            await queue_builds(builder.container, uuid.uuid4(), 1, now - timedelta(minutes=1))
            await queue_builds(
                builder.container, uuid.uuid4(), 1, now - timedelta(minutes=20),
                not_before=now + timedelta(hours=1),
            )  # fmt: skip

            async def shows_the_five_minute_wait() -> bool:
                return 300 <= await age() < 20 * 60

            await wait_until(shows_the_five_minute_wait, message="the oldest build's age")
            exposition = (await client.get("/metrics")).text
            assert check_metrics(exposition) == ""

            # The oldest one is claimed: the age falls to the next one's.
            async with builder.container.uow() as uow:
                claimed = await BuildRepository(uow.session).claim_next("test", utcnow(), 60)
                await uow.commit()
            assert claimed is not None

            async def shows_the_one_minute_wait() -> bool:
                return 60 <= await age() < 300

            await wait_until(shows_the_one_minute_wait, message="the next build's age")

            # A stopped builder does not report a queue it no longer watches.
            await builder.container.queue_age.stop()
            assert await age() == 0
