"""Queries on API keys: every read by id is scoped to its owner; resolving goes by the hash of
the secret itself (the secret is the proof of ownership)."""

from __future__ import annotations

import uuid
from datetime import datetime

from kubeserve_common.db.repository import OwnedRepository
from sqlalchemy import delete, func, or_, select, update

from kubeserve_auth.repositories.orm import ApiKey, User


class ApiKeyRepository(OwnedRepository[ApiKey]):
    model = ApiKey
    owner_column = "user_id"

    async def list_for_owner(self, owner_id: uuid.UUID) -> list[ApiKey]:
        stmt = self.for_owner(owner_id).order_by(ApiKey.created_at.desc(), ApiKey.id)
        return list((await self.session.execute(stmt)).scalars())

    async def count_active(self, owner_id: uuid.UUID, now: datetime) -> int:
        stmt = select(func.count(ApiKey.id)).where(
            ApiKey.user_id == owner_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_with_user_by_hash(self, key_hash: str) -> tuple[ApiKey, User] | None:
        stmt = select(ApiKey, User).join(User, User.id == ApiKey.user_id)
        row = (await self.session.execute(stmt.where(ApiKey.key_hash == key_hash))).first()
        return (row[0], row[1]) if row else None

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
        )

    async def delete_all_of_owner(self, owner_id: uuid.UUID) -> None:
        await self.session.execute(delete(ApiKey).where(ApiKey.user_id == owner_id))
