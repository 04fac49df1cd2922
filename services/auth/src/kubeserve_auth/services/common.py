"""Helpers the use cases share: the clock, the access checks on a principal, ORM -> view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from kubeserve_common.security.principal import Principal

from kubeserve_auth.domain.errors import AccountUnavailable, AdminOnly, InteractiveLoginRequired
from kubeserve_auth.domain.models import ApiKeyView, RateLimit, UserView
from kubeserve_auth.repositories.orm import ApiKey, User
from kubeserve_auth.repositories.users import UserRepository


def now() -> datetime:
    return datetime.now(UTC)


def require_interactive(principal: Principal) -> None:
    """Account and key management need a logged-in user: a leaked (possibly scoped) API key
    must not be able to mint unscoped keys or act as an administrator."""
    if principal.auth != "token":
        raise InteractiveLoginRequired()


def require_admin(principal: Principal) -> None:
    require_interactive(principal)
    if not principal.is_admin:
        raise AdminOnly()


async def active_user(users: UserRepository, user_id: uuid.UUID) -> User:
    """The principal's user as stored now; a disabled or deleted account stops here even while
    its access token is still valid at the gateway."""
    user = await users.get(user_id)
    if user is None or user.disabled:
        raise AccountUnavailable()
    return user


def user_view(user: User) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def api_key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        deployment_ids=list(key.deployment_ids) if key.deployment_ids is not None else None,
        expires_at=key.expires_at,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        rate_limit=key_rate_limit(key),
    )


def key_rate_limit(key: ApiKey) -> RateLimit | None:
    if key.rate_limit_rps is None or key.rate_limit_burst is None:
        return None
    return RateLimit(key.rate_limit_rps, key.rate_limit_burst)
