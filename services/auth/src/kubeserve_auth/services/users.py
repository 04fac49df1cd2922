"""Use cases on accounts: register, read oneself, and the administrator's list, disable, enable
and delete. Disabling and deleting publish `UserDisabled` / `UserDeleted` in the same transaction
(outbox), so every gateway refuses the account's still-valid access tokens at once."""

from __future__ import annotations

import logging
import uuid

from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.events import CloudEvent, UserDeleted, UserDisabled, UserRegistered
from kubeserve_common.security.passwords import PasswordHasher
from kubeserve_common.security.principal import Principal
from sqlalchemy.exc import IntegrityError

from kubeserve_auth.domain.errors import (
    AdminOnly,
    CannotDeleteSelf,
    CannotDisableSelf,
    EmailTaken,
    UserNotFound,
    WeakPassword,
)
from kubeserve_auth.domain.models import UserPage, UserView
from kubeserve_auth.domain.policy import normalise_email, password_problems
from kubeserve_auth.repositories.api_keys import ApiKeyRepository
from kubeserve_auth.repositories.orm import User
from kubeserve_auth.repositories.refresh_tokens import RefreshTokenRepository
from kubeserve_auth.repositories.users import UserRepository
from kubeserve_auth.services.common import (
    active_user,
    now,
    require_admin,
    user_view,
)

log = logging.getLogger(__name__)

SERVICE = "auth"


class UserService:
    def __init__(
        self, uow: UnitOfWorkFactory, hasher: PasswordHasher, admin_emails: frozenset[str]
    ) -> None:
        self.uow = uow
        self.hasher = hasher
        self.admin_emails = admin_emails

    async def register(self, raw_email: str, password: str) -> UserView:
        email = normalise_email(raw_email)  # the API layer already validated it
        problems = password_problems(password, email)
        if problems:
            raise WeakPassword(
                "password " + "; ".join(problems),
                details={"field": "password", "problems": problems},
            )
        # Hash before taking a connection: the pool is not held for the duration of argon2.
        password_hash = await self.hasher.hash(password)
        role = "admin" if email in self.admin_emails else "user"
        async with self.uow() as uow:
            users = UserRepository(uow.session)
            if await users.email_exists(email):
                raise EmailTaken()
            stamp = now()
            user = User(
                id=uuid.uuid4(),
                email=email,
                password_hash=password_hash,
                role=role,
                disabled=False,
                created_at=stamp,
                updated_at=stamp,
            )
            try:
                await users.add(user)
            except IntegrityError:
                raise EmailTaken() from None  # a concurrent registration won the race
            await uow.publish(
                CloudEvent.create(
                    UserRegistered(user_id=user.id, email=email, role=role),
                    service=SERVICE,
                    subject=f"users/{user.id}",
                    tenant_id=str(user.id),
                )
            )
            try:
                await uow.commit()
            except IntegrityError:
                raise EmailTaken() from None
        log.info("user registered", extra={"user_id": str(user.id), "role": role})
        return user_view(user)

    async def me(self, principal: Principal) -> UserView:
        async with self.uow() as uow:
            return user_view(await active_user(UserRepository(uow.session), principal.user_id))

    async def list_users(self, principal: Principal, *, limit: int, offset: int) -> UserPage:
        require_admin(principal)
        async with self.uow() as uow:
            users = UserRepository(uow.session)
            await _active_admin(users, principal)
            items = [user_view(u) for u in await users.page(limit=limit, offset=offset)]
            return UserPage(items=items, total=await users.count(), limit=limit, offset=offset)

    async def set_disabled(
        self, principal: Principal, user_id: uuid.UUID, disabled: bool
    ) -> UserView:
        """Disabling also revokes every refresh-token family of the user; API keys stop
        resolving at once (the resolve checks the flag)."""
        require_admin(principal)
        if disabled and user_id == principal.user_id:
            raise CannotDisableSelf()
        async with self.uow() as uow:
            users = UserRepository(uow.session)
            user = await _target_of_admin(users, principal, user_id)
            if user.disabled != disabled:
                stamp = now()
                user.disabled = disabled
                user.updated_at = stamp
                if disabled:
                    await RefreshTokenRepository(uow.session).revoke_all_of_user(user.id, stamp)
                    await uow.publish(_user_event(UserDisabled(user_id=user.id)))
                await uow.session.flush()
            view = user_view(user)
            await uow.commit()
        log.info(
            "user disabled" if disabled else "user enabled",
            extra={"user_id": str(user_id), "by": str(principal.user_id)},
        )
        return view

    async def delete_user(self, principal: Principal, user_id: uuid.UUID) -> None:
        """Delete the account for good: its API keys and refresh tokens go with it (the foreign
        keys cascade), and `UserDeleted` tells the deployer to stop its deployments and the
        gateways to refuse its tokens. Another call for the same id is a 404."""
        require_admin(principal)
        if user_id == principal.user_id:
            raise CannotDeleteSelf()
        async with self.uow() as uow:
            users = UserRepository(uow.session)
            user = await _target_of_admin(users, principal, user_id)
            await RefreshTokenRepository(uow.session).delete_all_of_user(user.id)
            await ApiKeyRepository(uow.session).delete_all_of_owner(user.id)
            await users.delete(user)
            await uow.publish(_user_event(UserDeleted(user_id=user_id)))
            await uow.commit()
        log.info("user deleted", extra={"user_id": str(user_id), "by": str(principal.user_id)})

    async def set_role(self, raw_email: str, role: str) -> UserView:
        """Operator path (CLI): give an existing account a role, e.g. the first admin."""
        if role not in ("user", "admin"):
            raise ValueError("role must be 'user' or 'admin'")
        email = normalise_email(raw_email)
        async with self.uow() as uow:
            user = await UserRepository(uow.session).get_by_email(email)
            if user is None:
                raise UserNotFound()
            user.role = role
            user.updated_at = now()
            await uow.session.flush()
            view = user_view(user)
            await uow.commit()
        return view


def _user_event(payload: UserDisabled | UserDeleted) -> CloudEvent:
    return CloudEvent.create(
        payload,
        service=SERVICE,
        subject=f"users/{payload.user_id}",
        tenant_id=str(payload.user_id),
    )


async def _target_of_admin(users: UserRepository, principal: Principal, user_id: uuid.UUID) -> User:
    """The account an (active) administrator acts on; `UserNotFound` when there is none."""
    await _active_admin(users, principal)
    user = await users.get(user_id)
    if user is None:
        raise UserNotFound()
    return user


async def _active_admin(users: UserRepository, principal: Principal) -> None:
    """The stored role decides, not only the token's claim: a demoted admin's access token
    stays valid for a few minutes, its powers do not."""
    if (await active_user(users, principal.user_id)).role != "admin":
        raise AdminOnly()
