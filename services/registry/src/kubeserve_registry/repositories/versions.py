"""Queries on versions; always scoped by owner (and by model where a route names one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

from kubeserve_common.db.repository import OwnedRepository
from sqlalchemy import Select, func, select

from kubeserve_registry.repositories.orm import VersionRecord

VersionSort = Literal["version", "-version", "created_at", "-created_at"]


class VersionRepository(OwnedRepository[VersionRecord]):
    model = VersionRecord

    def _of_model(self, owner_id: UUID, model_id: UUID) -> Select[VersionRecord]:
        return self.for_owner(owner_id).where(VersionRecord.model_id == model_id)

    async def get_by_ref(
        self, owner_id: UUID, model_id: UUID, ref: int | UUID, *, for_update: bool = False
    ) -> VersionRecord | None:
        stmt = self._of_model(owner_id, model_id)
        if isinstance(ref, int):
            stmt = stmt.where(VersionRecord.number == ref)
        else:
            stmt = stmt.where(VersionRecord.id == ref)
        return await self.one_or_none(stmt, for_update=for_update)

    async def page(
        self, owner_id: UUID, model_id: UUID, *, limit: int, offset: int, sort: VersionSort
    ) -> tuple[Sequence[VersionRecord], int]:
        column = VersionRecord.number if sort.lstrip("-") == "version" else VersionRecord.created_at
        order = column.desc() if sort.startswith("-") else column.asc()
        stmt = self._of_model(owner_id, model_id).order_by(order, VersionRecord.number)
        items = (await self.session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        total = (
            await self.session.execute(
                select(func.count())
                .select_from(VersionRecord)
                .where(VersionRecord.owner_id == owner_id, VersionRecord.model_id == model_id)
            )
        ).scalar_one()
        return items, int(total)

    async def latest_of(
        self, owner_id: UUID, model_ids: Sequence[UUID]
    ) -> dict[UUID, VersionRecord]:
        """The highest-numbered version of each model (list views show its status)."""
        if not model_ids:
            return {}
        newest = (
            select(VersionRecord.model_id, func.max(VersionRecord.number).label("number"))
            .where(VersionRecord.owner_id == owner_id, VersionRecord.model_id.in_(model_ids))
            .group_by(VersionRecord.model_id)
            .subquery()
        )
        stmt = self.for_owner(owner_id).join(
            newest,
            (VersionRecord.model_id == newest.c.model_id)
            & (VersionRecord.number == newest.c.number),
        )
        return {v.model_id: v for v in (await self.session.execute(stmt)).scalars().all()}

    async def delete(self, record: VersionRecord) -> None:
        await self.session.delete(record)
        await self.session.flush()
