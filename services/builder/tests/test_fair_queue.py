"""Builds are fair across tenants (issue 15.5): the queue hands builds out round-robin by
tenant, so one tenant's burst does not hold back another tenant's single upload. Order is the
behaviour tested (on PostgreSQL, the claim the build workers use), not timing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from builder_helpers import queue_builds as _queue
from kubeserve_builder.repositories.builds import BuildRepository
from kubeserve_common.db.base import utcnow


async def _claim_all(container: Any, owners: dict[uuid.UUID, str]) -> list[str]:
    order = []
    while True:
        async with container.uow() as uow:
            build = await BuildRepository(uow.session).claim_next("test-worker", utcnow(), 60)
            await uow.commit()
        if build is None:
            return order
        order.append(owners[build.owner_id])


async def test_a_burst_from_one_tenant_does_not_hold_back_another_tenants_upload(
    start_builder: Any,
) -> None:
    builder = await start_builder()
    await builder.container.loop.stop()  # the test claims, in the workers' place
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = utcnow() - timedelta(minutes=5)
    await _queue(builder.container, a, 6, start)  # A's burst first
    await _queue(builder.container, b, 1, start + timedelta(seconds=1))  # then B's one upload
    await _queue(builder.container, c, 2, start + timedelta(seconds=2))  # and C's two

    order = await _claim_all(builder.container, {a: "A", b: "B", c: "C"})

    # Oldest first would be A x6, B, C, C: B would wait for all of A's burst.
    assert order == ["A", "B", "C", "A", "C", "A", "A", "A", "A"]
