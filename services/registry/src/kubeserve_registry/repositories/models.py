"""Queries on models and their version counter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.repository import OwnedRepository
from sqlalchemy import delete, func, select, update

from kubeserve_registry.repositories.orm import ModelRecord, VersionRecord

ModelSort = Literal["created_at", "-created_at", "name", "-name"]


class ModelRepository(OwnedRepository[ModelRecord]):
    model = ModelRecord

    async def get_by_name(self, owner_id: UUID, name: str) -> ModelRecord | None:
        stmt = self.for_owner(owner_id).where(ModelRecord.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self, owner_id: UUID, *, limit: int, offset: int, sort: ModelSort
    ) -> tuple[Sequence[ModelRecord], int]:
        column = ModelRecord.name if sort.lstrip("-") == "name" else ModelRecord.created_at
        order = column.desc() if sort.startswith("-") else column.asc()
        stmt = self.for_owner(owner_id).order_by(order, ModelRecord.id).limit(limit).offset(offset)
        items = (await self.session.execute(stmt)).scalars().all()
        total = (
            await self.session.execute(
                select(func.count())
                .select_from(ModelRecord)
                .where(ModelRecord.owner_id == owner_id)
            )
        ).scalar_one()
        return items, int(total)

    async def allocate_version_number(self, owner_id: UUID, model_id: UUID) -> int | None:
        """Take the model's next version number, or None when the model is gone.

        A single UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) before
        anything is read, so concurrent uploads serialise here until this transaction ends, and
        a rollback hands the number back: no gaps, no duplicates.
        """
        stmt = (
            update(ModelRecord)
            .where(ModelRecord.id == model_id, ModelRecord.owner_id == owner_id)
            .values(version_seq=ModelRecord.version_seq + 1, updated_at=utcnow())
            .returning(ModelRecord.version_seq)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delete(self, record: ModelRecord) -> None:
        # Versions explicitly, not only by the FK cascade: SQLite enforces it only when asked.
        await self.session.execute(
            delete(VersionRecord).where(
                VersionRecord.owner_id == record.owner_id, VersionRecord.model_id == record.id
            )
        )
        await self.session.delete(record)
        await self.session.flush()
