"""Queries on refresh tokens and their families."""

from __future__ import annotations

import uuid
from datetime import datetime

from kubeserve_common.db.repository import Repository
from sqlalchemy import delete, select, update

from kubeserve_auth.repositories.orm import RefreshToken


class RefreshTokenRepository(Repository[RefreshToken]):
    model = RefreshToken

    async def get_by_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> RefreshToken | None:
        # Locked: of two concurrent refreshes with one token the second waits, then sees it rotated.
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return await self.one_or_none(stmt, for_update=for_update)

    async def mark_rotated(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Rotate a live token; False when someone else rotated or revoked it first (the
        conditional update is the guard on SQLite, where FOR UPDATE does not exist)."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(rotated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_all_of_user(self, user_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def delete_all_of_user(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))

    async def prune_expired(self, before: datetime) -> None:
        """Forget tokens that expired before `before` (a replay of one is then merely unknown,
        which is a 401 as well)."""
        await self.session.execute(delete(RefreshToken).where(RefreshToken.expires_at < before))
