"""Repository base: queries and adds in the caller's session; never commits (the service does)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class Repository(Generic[T]):
    model: type[T]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def one_or_none(self, stmt: Select[Any], *, for_update: bool = False) -> T | None:
        """The one row `stmt` selects, or None; `for_update` locks it until the transaction
        ends."""
        if for_update:
            stmt = stmt.with_for_update()
        found: T | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def add(self, obj: T) -> T:
        self.session.add(obj)
        await self.session.flush()
        return obj


class OwnedRepository(Repository[T]):
    """For tenant-owned rows: every read starts from `for_owner()`, so a lookup by id alone
    cannot leak another tenant's object."""

    owner_column = "owner_id"

    def for_owner(self, owner_id: UUID) -> Select[T]:
        return select(self.model).where(getattr(self.model, self.owner_column) == owner_id)

    async def get_owned(self, owner_id: UUID, object_id: UUID) -> T | None:
        stmt = self.for_owner(owner_id).where(self.model.id == object_id)  # type: ignore[attr-defined]
        return await self.one_or_none(stmt)
