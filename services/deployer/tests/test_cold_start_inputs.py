"""The cold-start estimator's inputs reach the deployer's version projection from
`VersionBuilt` (the trial's load time and the wheelhouse size the build measured)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from deployer_helpers import Deployer, IdleBackend, Seeder
from kubeserve_common.events.catalog import VersionBuilt
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.repositories.versions import VersionRepository


async def test_version_built_carries_the_trial_load_and_wheelhouse_size(
    start_deployer: Callable[..., Any], seeder: Seeder
) -> None:
    idle: Deployer = await start_deployer(backend=IdleBackend())
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v = await seeder.version(owner, model_id, built=False)
    plan = {"cold_start": {"model_load_ms": 123.4, "wheel_bytes": 2_097_152, "total_ms": 9.0}}
    built = VersionBuilt(
        model_id=model_id,
        version_id=v.version_id,
        version_tag=v.tag,
        owner_id=owner,
        signature={},
        dependency_plan=plan,
        predicted_cold_start_ms=4700.0,
    )
    await seeder.bus.publish(CloudEvent.create(built, service="builder"))

    async def stored() -> tuple[float | None, int | None] | None:
        async with idle.container.uow.reading() as uow:
            row = await VersionRepository(uow.session).get_owned(owner, v.version_id)
            if row is None or row.trial_load_ms is None:
                return None
            return row.trial_load_ms, row.wheelhouse_bytes

    async def arrived() -> bool:
        return await stored() is not None

    await wait_until(arrived, timeout=30)
    assert await stored() == (123.4, 2_097_152)
