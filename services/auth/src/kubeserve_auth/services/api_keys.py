"""Use cases on API keys: create (secret shown once), list, revoke, and resolve for the gateway."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.events import ApiKeyRevoked, CloudEvent
from kubeserve_common.security.principal import Principal

from kubeserve_auth.domain.credentials import digest, new_api_key, plausible_api_key
from kubeserve_auth.domain.errors import ApiKeyNotFound, InvalidApiKey, TooManyApiKeys
from kubeserve_auth.domain.models import ApiKeyView, CreatedApiKey, RateLimit, ResolvedApiKey
from kubeserve_auth.repositories.api_keys import ApiKeyRepository
from kubeserve_auth.repositories.orm import ApiKey
from kubeserve_auth.repositories.users import UserRepository
from kubeserve_auth.services.common import (
    active_user,
    api_key_view,
    key_rate_limit,
    now,
    require_interactive,
)

log = logging.getLogger(__name__)

# `last_used_at` is advisory: write it at most this often per key, not on every request.
LAST_USED_PRECISION = timedelta(seconds=60)


class ApiKeyService:
    def __init__(self, uow: UnitOfWorkFactory, *, max_active_per_user: int) -> None:
        self.uow = uow
        self.max_active = max_active_per_user

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        deployment_ids: list[uuid.UUID] | None,
        expires_at: datetime | None,
        rate_limit: RateLimit | None = None,
    ) -> CreatedApiKey:
        require_interactive(principal)
        stamp = now()
        scope = sorted({str(d) for d in deployment_ids}) if deployment_ids is not None else None
        secret = new_api_key()
        async with self.uow() as uow:
            await active_user(UserRepository(uow.session), principal.user_id)
            keys = ApiKeyRepository(uow.session)
            if await keys.count_active(principal.user_id, stamp) >= self.max_active:
                raise TooManyApiKeys(self.max_active)
            key = ApiKey(
                id=uuid.uuid4(),
                user_id=principal.user_id,
                name=name,
                prefix=secret.display_prefix,
                key_hash=secret.digest,
                deployment_ids=scope,
                expires_at=expires_at,
                rate_limit_rps=rate_limit.requests_per_second if rate_limit else None,
                rate_limit_burst=rate_limit.burst if rate_limit else None,
                created_at=stamp,
            )
            await keys.add(key)
            view = api_key_view(key)
            await uow.commit()
        log.info("api key created", extra={"api_key_id": str(view.id)})
        return CreatedApiKey(key=view, secret=secret.value)

    async def list_keys(self, principal: Principal) -> list[ApiKeyView]:
        require_interactive(principal)
        async with self.uow() as uow:
            await active_user(UserRepository(uow.session), principal.user_id)
            keys = await ApiKeyRepository(uow.session).list_for_owner(principal.user_id)
            return [api_key_view(k) for k in keys]

    async def revoke(self, principal: Principal, key_id: uuid.UUID) -> None:
        """Idempotent for one's own key; another user's key is simply not found. The first
        revocation publishes `ApiKeyRevoked` with it (outbox): gateways drop the key at once."""
        require_interactive(principal)
        async with self.uow() as uow:
            await active_user(UserRepository(uow.session), principal.user_id)
            key = await ApiKeyRepository(uow.session).get_owned(principal.user_id, key_id)
            if key is None:
                raise ApiKeyNotFound()
            if key.revoked_at is None:
                key.revoked_at = now()
                await uow.session.flush()
                await uow.publish(
                    CloudEvent.create(
                        ApiKeyRevoked(api_key_id=key.id, user_id=key.user_id),
                        service="auth",
                        subject=f"users/{key.user_id}/api-keys/{key.id}",
                        tenant_id=str(key.user_id),
                    )
                )
                await uow.commit()
                log.info("api key revoked", extra={"api_key_id": str(key_id)})

    async def resolve(self, secret: str) -> ResolvedApiKey:
        """Who an API key acts for (the gateway's question). One error for every failure."""
        if not plausible_api_key(secret):
            raise InvalidApiKey()
        stamp = now()
        async with self.uow() as uow:
            keys = ApiKeyRepository(uow.session)
            found = await keys.get_with_user_by_hash(digest(secret))
            if found is None:
                raise InvalidApiKey()
            key, user = found
            if key.revoked_at is not None or user.disabled:
                raise InvalidApiKey()
            if key.expires_at is not None and key.expires_at <= stamp:
                raise InvalidApiKey()
            resolved = ResolvedApiKey(
                user_id=user.id,
                role=user.role,
                api_key_id=key.id,
                deployment_ids=list(key.deployment_ids) if key.deployment_ids is not None else None,
                rate_limit=key_rate_limit(key),
            )
            if key.last_used_at is None or stamp - key.last_used_at >= LAST_USED_PRECISION:
                await keys.touch(key.id, stamp)
                await uow.commit()
        return resolved
