"""Queries of the cold-start estimator's tables: the per-(backend, phase) sample windows and the
replica starts already learnt. Platform-wide data (no tenant's object): what one start teaches
is a number per backend, never who started it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.repository import Repository
from kubeserve_common.db.upsert import conflict_insert
from sqlalchemy import delete, select

from kubeserve_deployer.domain.cold_start import PHASES, ColdStartModel
from kubeserve_deployer.repositories.orm import ColdStartEstimateRecord, ColdStartStartRecord

# Learnt starts kept (newest): enough that a start still running is never learnt twice.
KEEP_STARTS = 10_000


class ColdStartRepository(Repository[ColdStartEstimateRecord]):
    model = ColdStartEstimateRecord

    async def load(self) -> ColdStartModel:
        """The estimator as stored now (every backend)."""
        rows = (await self.session.execute(select(ColdStartEstimateRecord))).scalars().all()
        return _model(rows)

    async def load_for_update(self, backend: str) -> ColdStartModel:
        """The estimator with `backend`'s rows locked until the commit (PostgreSQL), so two
        writers append to its windows one after the other instead of losing a sample."""
        now = utcnow()
        stmt = conflict_insert(self.session, ColdStartEstimateRecord).values(
            [
                dict(backend=backend, phase=p, samples=[], observations=0, updated_at=now)
                for p in PHASES
            ]
        )
        await self.session.execute(stmt.on_conflict_do_nothing())
        locked = (
            select(ColdStartEstimateRecord)
            .where(ColdStartEstimateRecord.backend == backend)
            .with_for_update()
        )
        rows = (await self.session.execute(locked)).scalars().all()
        return _model(rows)

    async def save(self, model: ColdStartModel, backend: str, learnt: Sequence[str]) -> None:
        """Write `backend`'s windows back (rows locked by `load_for_update`); `learnt`: the
        phases that got a sample now."""
        stmt = select(ColdStartEstimateRecord).where(ColdStartEstimateRecord.backend == backend)
        windows = model.to_json().get(backend, {})
        now = utcnow()
        for row in (await self.session.execute(stmt)).scalars().all():
            if row.phase in learnt:
                row.samples = list(windows.get(row.phase, []))
                row.observations = (row.observations or 0) + 1
                row.updated_at = now
        await self.session.flush()

    async def claim_start(
        self,
        start_id: str,
        *,
        backend: str,
        deployment_id: UUID,
        version_id: UUID | None,
        cold_start: Mapping[str, Any],
    ) -> bool:
        """Record a start as learnt; False when it was already (by this or another process)."""
        stmt = (
            conflict_insert(self.session, ColdStartStartRecord)
            .values(
                start_id=start_id,
                backend=backend,
                deployment_id=deployment_id,
                version_id=version_id,
                cold_start=dict(cold_start),
                learnt_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(ColdStartStartRecord.start_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def learnt(self, start_id: str) -> ColdStartStartRecord | None:
        return await self.session.get(ColdStartStartRecord, start_id)

    async def prune_starts(self, keep: int = KEEP_STARTS) -> None:
        newest = (
            select(ColdStartStartRecord.learnt_at)
            .order_by(ColdStartStartRecord.learnt_at.desc())
            .offset(keep)
            .limit(1)
        )
        cutoff = (await self.session.execute(newest)).scalar_one_or_none()
        if cutoff is not None:
            await self.session.execute(
                delete(ColdStartStartRecord).where(ColdStartStartRecord.learnt_at <= cutoff)
            )


def _model(rows: Sequence[ColdStartEstimateRecord]) -> ColdStartModel:
    data: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row.samples:
            data.setdefault(row.backend, {})[row.phase] = list(row.samples)
    return ColdStartModel.from_json(data)
