"""Queries on users (the tenants themselves: a user reads only its own row, admins list all)."""

from __future__ import annotations

import uuid

from kubeserve_common.db.repository import Repository
from sqlalchemy import func, select

from kubeserve_auth.repositories.orm import User


class UserRepository(Repository[User]):
    model = User

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        stmt = select(User).where(User.email == email)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def email_exists(self, email: str) -> bool:
        stmt = select(User.id).where(User.email == email)
        return (await self.session.execute(stmt)).first() is not None

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()

    async def page(self, *, limit: int, offset: int) -> list[User]:
        stmt = select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(User.id)))).scalar_one())
