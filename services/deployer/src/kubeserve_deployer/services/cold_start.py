"""Calibrated cold-start predictions (issue 18): the reconcile loop learns every replica start
once (`learn_start`, inside its own transaction), the API predicts per backend from the stored
estimates (read on every request, so a separate API process sees what the worker learnt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.errors import NotFound
from sqlalchemy.ext.asyncio import AsyncSession

from kubeserve_deployer.domain.cold_start import (
    BACKENDS,
    ColdStartModel,
    Prediction,
    VersionInputs,
    backend_for,
    expected_backend,
    measured_phases,
    measured_total,
    start_key,
)
from kubeserve_deployer.domain.deployments import ReplicaView
from kubeserve_deployer.repositories.cold_start import ColdStartRepository
from kubeserve_deployer.repositories.orm import DeploymentRecord, ReplicaRecord, VersionProjection
from kubeserve_deployer.repositories.versions import VersionRepository

MIB = 1024 * 1024


@dataclass(frozen=True)
class ColdStartConfig:
    """Which backend new replicas start on: `runtime_backend` (local | kubernetes) and, for
    the local one, whether the warm pool is on."""

    runtime_backend: str = "local"
    warm_pool: bool = True


@dataclass(frozen=True)
class VersionPredictions:
    version_id: UUID
    predictions: list[Prediction]


def inputs_of(version: VersionProjection | None) -> VersionInputs:
    if version is None:
        return VersionInputs(trial_load_ms=None)
    return VersionInputs(
        trial_load_ms=version.trial_load_ms,
        wheelhouse_mib=(version.wheelhouse_bytes or 0) / MIB,
    )


async def learn_start(
    session: AsyncSession,
    view: ReplicaView,
    deployment_id: UUID,
    version: VersionProjection | None,
) -> dict[str, Any] | None:
    """The measured cold start of the replica start `view` shows, learnt by the estimator the
    first time any process sees it (a start id is claimed once); None while it has no
    measurement. Returns {"backend", "phases_ms", "total_ms"}."""
    key = start_key(view.start_id)
    if not key or not view.timings:
        return None
    repo = ColdStartRepository(session)
    seen = await repo.learnt(key)
    if seen is not None:
        return dict(seen.cold_start)
    backend = backend_for(view.launcher)
    inputs = inputs_of(version)
    model = await repo.load_for_update(backend)
    phases = measured_phases(backend, view.timings, inputs, model.predict(backend, inputs))
    cold = {
        "backend": backend,
        "phases_ms": {k: round(v, 1) for k, v in phases.items()},
        "total_ms": round(measured_total(backend, view.timings), 1),
    }
    claimed = await repo.claim_start(
        key,
        backend=backend,
        deployment_id=deployment_id,
        version_id=version.id if version is not None else None,
        cold_start=cold,
    )
    if not claimed:  # another process learnt it meanwhile
        seen = await repo.learnt(key)
        return dict(seen.cold_start) if seen is not None else cold
    await repo.save(model, backend, model.observe(backend, inputs, phases))
    await repo.prune_starts()
    return cold


class ColdStartService:
    def __init__(self, uow: UnitOfWorkFactory, config: ColdStartConfig) -> None:
        self.uow = uow
        self.config = config

    async def for_version(self, owner_id: UUID, version_id: UUID) -> VersionPredictions:
        """Every backend's prediction for one of the caller's versions (another tenant's or
        an unknown version: 404)."""
        async with self.uow.reading() as uow:
            version = await VersionRepository(uow.session).get_owned(owner_id, version_id)
            if version is None:
                raise NotFound(f"version {version_id} not found")
            repo = ColdStartRepository(uow.session)
            model = await repo.load()
            own = await repo.own_phases(version_id)
        inputs = inputs_of(version)
        return VersionPredictions(
            version_id, [model.predict(b, inputs, own.get(b)) for b in BACKENDS]
        )

    async def estimates(self, uow: UnitOfWork) -> ColdStartModel:
        return await ColdStartRepository(uow.session).load()

    async def for_deployment(
        self,
        uow: UnitOfWork,
        d: DeploymentRecord,
        replicas: Sequence[ReplicaRecord],
        model: ColdStartModel,
    ) -> Prediction:
        """The prediction for the backend the deployment's next replica starts on: the one
        its current revision's replicas run on, else the one the settings pick."""
        version = await VersionRepository(uow.session).get_owned(d.owner_id, d.version_id)
        launchers = [r.launcher for r in replicas if r.revision == d.revision and r.launcher]
        if launchers:
            backend = backend_for(launchers[-1])
        else:
            has_wheels = bool(version is not None and version.wheelhouse_uri)
            backend = expected_backend(
                self.config.runtime_backend, self.config.warm_pool, has_wheels
            )
        own = await ColdStartRepository(uow.session).own_phases(d.version_id)
        return model.predict(backend, inputs_of(version), own.get(backend))
