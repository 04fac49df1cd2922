"""Use cases of a login session: log in (with per-account backoff), rotate a refresh token
(reuse revokes the family), log out."""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from datetime import timedelta

from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.security.passwords import PasswordHasher
from kubeserve_common.security.tokens import ACCESS_AUDIENCE, ACCESS_ISSUER, issue_access_token

from kubeserve_auth.adapters.signing_keys import KeyRing
from kubeserve_auth.domain.credentials import digest, new_refresh_token, plausible_refresh_token
from kubeserve_auth.domain.errors import InvalidCredentials, InvalidRefreshToken, LoginThrottled
from kubeserve_auth.domain.models import TokenPair
from kubeserve_auth.domain.policy import normalise_email
from kubeserve_auth.domain.throttle import BackoffPolicy
from kubeserve_auth.repositories.login_failures import LoginFailureRepository
from kubeserve_auth.repositories.orm import RefreshToken, User
from kubeserve_auth.repositories.refresh_tokens import RefreshTokenRepository
from kubeserve_auth.repositories.users import UserRepository
from kubeserve_auth.services.common import now

log = logging.getLogger(__name__)


class SessionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        keys: KeyRing,
        backoff: BackoffPolicy,
        *,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
    ) -> None:
        self.uow = uow
        self.hasher = hasher
        self.keys = keys
        self.backoff = backoff
        self.access_ttl = access_ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds

    async def login(self, raw_email: str, password: str) -> TokenPair:
        """Tokens for a correct email/password of an enabled account; otherwise one generic 401
        (unknown email, wrong password and disabled account look and cost the same), or 429
        while the account is backing off."""
        try:
            email: str | None = normalise_email(raw_email)
        except ValueError:
            email = None  # no such account can exist, but it is throttled like any other
        throttle_key = digest(email or raw_email.strip().lower())
        started = now()
        async with self.uow() as uow:
            state = await LoginFailureRepository(uow.session).get(throttle_key)
            locked_until = state.locked_until if state is not None else None
            user = await UserRepository(uow.session).get_by_email(email) if email else None
            # Read what we need now: leaving the unit of work expires the ORM objects.
            user_id = user.id if user is not None else None
            stored = user.password_hash if user is not None and not user.disabled else None
        if locked_until is not None and locked_until > started:
            wait = math.ceil((locked_until - started).total_seconds())
            raise LoginThrottled(max(wait, 1))

        # Verified with no connection held; unusable accounts verify a dummy hash instead.
        if not await self.hasher.verify(stored, password) or user_id is None or stored is None:
            await self._record_failure(throttle_key)
            raise InvalidCredentials()

        new_hash = await self.hasher.hash(password) if self.hasher.needs_rehash(stored) else None
        refresh = new_refresh_token()
        async with self.uow() as uow:
            fresh = await UserRepository(uow.session).get(user_id)
            if fresh is None or fresh.disabled:  # disabled while we were hashing
                raise InvalidCredentials()
            stamp = now()
            if new_hash is not None and fresh.password_hash == stored:
                fresh.password_hash = new_hash
                fresh.updated_at = stamp
                log.info(
                    "password rehashed with current parameters", extra={"user_id": str(user_id)}
                )
            await LoginFailureRepository(uow.session).clear(throttle_key)
            tokens = RefreshTokenRepository(uow.session)
            if secrets.randbelow(100) == 0:
                # Now and then, drop sessions that expired long ago (every refresh adds a row).
                await tokens.prune_expired(stamp - timedelta(days=1))
            await tokens.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=fresh.id,
                    family_id=uuid.uuid4(),
                    token_hash=refresh.digest,
                    created_at=stamp,
                    expires_at=stamp + timedelta(seconds=self.refresh_ttl),
                )
            )
            pair = self._pair(fresh, refresh.value)
            await uow.commit()
        log.info("login", extra={"user_id": str(user_id)})
        return pair

    async def _record_failure(self, throttle_key: str) -> None:
        stamp = now()
        async with self.uow() as uow:
            repo = LoginFailureRepository(uow.session)
            failures = await repo.record_failure(
                throttle_key, stamp, stale_before=stamp - self.backoff.forget_after()
            )
            until = self.backoff.locked_until(failures, stamp)
            if until is not None:
                await repo.lock(throttle_key, until)
            if secrets.randbelow(100) == 0:
                # Counters of addresses nobody tries any more (including made-up ones).
                await repo.prune(stamp - self.backoff.forget_after())
            await uow.commit()
        if until is not None:
            log.warning("login backoff", extra={"failures": failures})

    async def refresh(self, token: str) -> TokenPair:
        if not plausible_refresh_token(token):
            raise InvalidRefreshToken()
        stamp = now()
        async with self.uow() as uow:
            tokens = RefreshTokenRepository(uow.session)
            row = await tokens.get_by_hash(digest(token), for_update=True)
            if row is None or row.revoked_at is not None:
                raise InvalidRefreshToken()
            family_id, user_id = row.family_id, row.user_id
            if row.expires_at <= stamp and row.rotated_at is None:
                raise InvalidRefreshToken()
            if row.rotated_at is not None or not await tokens.mark_rotated(row.id, stamp):
                # Someone shows a token that was already exchanged: it was stolen, or the
                # legitimate client is replaying it. Either way the whole session ends.
                await tokens.revoke_family(family_id, stamp)
                await uow.commit()
                log.warning(
                    "refresh token reuse; family revoked",
                    extra={"user_id": str(user_id), "family_id": str(family_id)},
                )
                raise InvalidRefreshToken()
            user = await UserRepository(uow.session).get(user_id)
            if user is None or user.disabled:
                await tokens.revoke_family(family_id, stamp)
                await uow.commit()
                raise InvalidRefreshToken()
            fresh = new_refresh_token()
            await tokens.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    family_id=family_id,
                    token_hash=fresh.digest,
                    created_at=stamp,
                    expires_at=stamp + timedelta(seconds=self.refresh_ttl),
                )
            )
            pair = self._pair(user, fresh.value)
            await uow.commit()
        return pair

    async def logout(self, token: str) -> None:
        """Revoke the session the refresh token belongs to; unknown tokens are ignored (logout
        is idempotent and says nothing about a token's validity)."""
        if not plausible_refresh_token(token):
            return
        async with self.uow() as uow:
            tokens = RefreshTokenRepository(uow.session)
            row = await tokens.get_by_hash(digest(token))
            if row is not None:
                await tokens.revoke_family(row.family_id, now())
                await uow.commit()

    def _pair(self, user: User, refresh_token: str) -> TokenPair:
        access = issue_access_token(
            self.keys.current,
            subject=str(user.id),
            issuer=ACCESS_ISSUER,
            audience=ACCESS_AUDIENCE,
            ttl_seconds=self.access_ttl,
            claims={"role": user.role},
        )
        return TokenPair(
            access_token=access,
            expires_in=self.access_ttl,
            refresh_token=refresh_token,
            refresh_expires_in=self.refresh_ttl,
        )
