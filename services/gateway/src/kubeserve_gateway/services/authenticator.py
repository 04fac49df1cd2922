"""Who is calling: access tokens verified locally against auth's JWKS (cached, refetched on an
unknown `kid` at most once per interval) and API keys resolved through auth (short cache keyed
by a hash of the key, negative answers included).

While auth cannot answer, both serve their last known good answers within a bound
(`max_stale`): the JWKS for an hour, a key's resolution for five minutes by default.

Revocations arrive by event on a queue of this process alone (`handle_revocation`):
`ApiKeyRevoked` drops the key's cached resolution, `UserDisabled` / `UserDeleted` drop the user's
and put the user on a bounded deny-list (`RevokedUsers`) that refuses their access tokens issued
before the event until those tokens have expired anyway."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kubeserve_common.caching import Lru
from kubeserve_common.errors import ServiceUnavailable
from kubeserve_common.events.catalog import ApiKeyRevoked, UserDeleted, UserDisabled
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import Principal
from kubeserve_common.security.tokens import (
    InvalidToken,
    token_kid,
    verification_keys,
    verify_access_token,
)

from kubeserve_gateway.adapters.auth import AuthPort, AuthUnavailable
from kubeserve_gateway.domain.errors import AuthenticationRequired, InvalidCredentials
from kubeserve_gateway.metrics import (
    API_KEY_LOOKUPS,
    AUTH_FAILURES,
    JWKS_FETCHES,
    STALE_CREDENTIALS,
)

log = logging.getLogger(__name__)

API_KEY_PREFIX = "ks_"
_API_KEY_SHAPE = re.compile(r"^ks_[A-Za-z0-9_.\-]{8,256}$")
_CLOCK_SKEW = 5  # seconds, as the token library's leeway


@dataclass(frozen=True)
class Credential:
    kind: str  # "token" | "api_key"
    value: str


def extract_credential(authorization: str | None, api_key: str | None) -> Credential | None:
    """`Authorization: Bearer <jwt|ks_...>` or `X-API-Key: ks_...`; None when neither is sent.
    A malformed Authorization header is an invalid credential, not an absent one."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise InvalidCredentials("expected `Authorization: Bearer <token or API key>`")
        kind = "api_key" if value.startswith(API_KEY_PREFIX) else "token"
        return Credential(kind, value)
    if api_key:
        return Credential("api_key", api_key.strip())
    return None


class JwksCache:
    """The verification keys of auth. Refreshed after `ttl`; an unknown `kid` triggers a refetch,
    but at most one per `refetch_interval` (single flight), so random kids cannot hammer auth.
    When a refresh fails, the keys we have keep working."""

    def __init__(
        self,
        auth: AuthPort,
        *,
        ttl: float,
        refetch_interval: float,
        max_stale: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = auth
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.max_stale = max_stale
        self._clock = clock
        self._keys: dict[str, dict[str, str]] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # observable by tests and metrics

    def _needs_fetch(self, kid: str) -> bool:
        now = self._clock()
        since_attempt = None if self._attempted_at is None else now - self._attempted_at
        if self._keys is None:
            # Nothing to verify with yet: retry soon, but not on every request while auth is down.
            return since_attempt is None or since_attempt >= min(self.refetch_interval, 1.0)
        if now - self._fetched_at >= self.ttl:
            return since_attempt is None or since_attempt >= min(self.refetch_interval, 1.0)
        return kid not in self._keys and (
            since_attempt is None or since_attempt >= self.refetch_interval
        )

    async def keys_for(self, kid: str) -> Mapping[str, Mapping[str, str]]:
        if self._needs_fetch(kid):
            async with self._lock:
                if self._needs_fetch(kid):  # someone else may have fetched while we waited
                    await self._fetch()
        if self._keys is None or self._clock() - self._fetched_at > max(self.max_stale, self.ttl):
            # Never fetched, or auth has been away for longer than we trust old keys.
            raise ServiceUnavailable(
                "authentication is temporarily unavailable; try again shortly",
                code="upstream_unavailable",
            )
        return self._keys

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            document = await self.auth.fetch_jwks()
            JWKS_FETCHES.labels("ok").inc()
        except AuthUnavailable as exc:
            JWKS_FETCHES.labels("failed").inc()
            log.warning("JWKS refresh failed; keeping the keys we have", extra={"error": str(exc)})
            return
        keys = verification_keys(document)
        if not keys:
            log.warning("JWKS had no usable ES256 keys; keeping the keys we have")
            return
        self._keys = keys
        self._fetched_at = self._attempted_at


@dataclass
class _Entry:
    expires: float
    principal: Principal | None
    confirmed: float  # when auth last gave this answer


class ApiKeyCache:
    """Resolutions keyed by SHA-256 of the key (the key itself is never kept), LRU-bounded.
    Concurrent misses for one key share a single call to auth."""

    def __init__(
        self,
        auth: AuthPort,
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        max_stale: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth = auth
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self.max_stale = max_stale
        self._clock = clock
        self._entries: Lru[str, _Entry] = Lru(max_entries)
        self._inflight: dict[str, asyncio.Future[Principal | None]] = {}
        # Bumped by every `forget_where`: an answer that was on its way from auth before a
        # revocation is not cached after it.
        self._epoch = 0
        self.lookups = 0  # calls made to auth

    async def resolve(self, api_key: str) -> Principal | None:
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        entry = self._entries.get(digest)
        if entry is not None and entry.expires > self._clock():
            return entry.principal
        pending = self._inflight.get(digest)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # we were cancelled ourselves
                # the request that was asking auth went away: ask ourselves below
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        epoch = self._epoch
        try:
            self.lookups += 1
            principal = await self.auth.resolve_api_key(api_key)
            API_KEY_LOOKUPS.labels("valid" if principal else "invalid").inc()
        except Exception as exc:
            API_KEY_LOOKUPS.labels("failed").inc()
            stale = self._last_known(digest, exc)
            if stale is not None:
                future.set_result(stale.principal)
                return stale.principal
            future.set_exception(exc)
            future.exception()  # mark retrieved: there may be no waiter
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(principal)
            ttl = self.ttl if principal is not None else self.negative_ttl
            if epoch == self._epoch and (ttl > 0 or self.max_stale > 0):
                now = self._clock()
                self._entries.put(digest, _Entry(now + ttl, principal, now))
            return principal
        finally:
            if self._inflight.get(digest) is future:  # a revocation may have replaced it
                del self._inflight[digest]

    def _last_known(self, digest: str, exc: Exception) -> _Entry | None:
        """While auth is away: the key's last answer, if confirmed within `max_stale`; it is
        reused for a TTL before auth is asked again."""
        if not isinstance(exc, AuthUnavailable):
            return None
        entry = self._entries.peek(digest)
        now = self._clock()
        if entry is None or now - entry.confirmed > self.max_stale:
            return None
        STALE_CREDENTIALS.inc()
        entry.expires = now + max(self.ttl, 1.0)
        return entry

    def forget_where(self, drop: Callable[[Principal], bool]) -> int:
        """Drop every cached resolution whose principal matches (a user disabled, a key
        revoked): the next request asks auth. Returns how many were dropped."""
        self._epoch += 1
        dropped = self._entries.remove_where(
            lambda _, e: e.principal is not None and drop(e.principal)
        )
        for digest in [d for d, f in self._inflight.items() if not f.done()]:
            # A request arriving after the revocation asks auth itself, never joining a lookup
            # that started before it.
            self._inflight.pop(digest, None)
        return dropped


class RevokedUsers:
    """Users disabled or deleted, each with the moment of the event: their access tokens issued
    up to that moment are refused. An entry is needed only while such a token can still be
    valid, so it expires after the longest access-token lifetime (`ttl`); at most `max_entries`
    are held (the oldest goes first, logged, in the rare case of that many revocations within
    one token lifetime). Tokens issued after the event (a re-enabled user logging in again)
    pass."""

    def __init__(
        self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # at, expires; in insertion order (read with `peek`), so the expired ones lead.
        self._entries: Lru[UUID, tuple[float, float]] = Lru(max_entries)

    def revoke(self, user_id: UUID, at: float) -> None:
        previous = self._entries.pop(user_id)
        latest = max(at, previous[0]) if previous else at
        self._prune()
        dropped = self._entries.put(user_id, (latest, self._clock() + self.ttl))
        if dropped is not None:
            log.warning(
                "revoked-user deny-list full; dropped the oldest entry",
                extra={"user_id": str(dropped[0])},
            )

    def refuses(self, user_id: UUID, issued_at: float) -> bool:
        entry = self._entries.peek(user_id)
        if entry is None:
            return False
        if entry[1] <= self._clock():
            self._entries.pop(user_id)
            return False
        return issued_at <= entry[0]

    def __len__(self) -> int:
        self._prune()
        return len(self._entries)

    def _prune(self) -> None:
        now = self._clock()
        # Entries are appended in insertion order with one ttl: the expired ones lead.
        while (oldest := self._entries.oldest()) is not None and oldest[1][1] <= now:
            self._entries.pop(oldest[0])


class VerifiedTokens:
    """Principals of access tokens already verified, keyed by a hash of the token, until the
    token expires or `ttl` passes (whichever is first), so a client's repeated calls skip the
    ECDSA verification. Only successes are kept; `ttl` bounds how long a key dropped from the
    JWKS keeps working for tokens seen before."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: Lru[bytes, tuple[float, Principal]] = Lru(max(1, max_entries))

    def get(self, token: str, now: float) -> Principal | None:
        if self.ttl <= 0:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= now:
            self._entries.pop(digest)
            return None
        return entry[1]

    def put(self, token: str, principal: Principal, *, expires: float, now: float) -> None:
        if self.ttl <= 0:
            return
        self._entries.put(
            hashlib.sha256(token.encode()).digest(), (min(expires, now + self.ttl), principal)
        )

    def forget_user(self, user_id: UUID) -> None:
        self._entries.remove_where(lambda _, entry: entry[1].user_id == user_id)


REVOCATION_EVENTS = (
    UserDisabled.event_type(),
    UserDeleted.event_type(),
    ApiKeyRevoked.event_type(),
)


class Authenticator:
    def __init__(
        self,
        jwks: JwksCache,
        api_keys: ApiKeyCache,
        *,
        issuer: str,
        audience: str,
        verified: VerifiedTokens | None = None,
        revoked: RevokedUsers | None = None,
    ) -> None:
        self.jwks = jwks
        self.api_keys = api_keys
        self.issuer = issuer
        self.audience = audience
        self.verified = verified or VerifiedTokens(ttl=0, max_entries=1)
        self.revoked = revoked or RevokedUsers(ttl=900.0, max_entries=100_000)

    async def handle_revocation(self, event: CloudEvent) -> None:
        """The bus handler for REVOCATION_EVENTS (a transient queue per gateway process, so
        every gateway hears every revocation). Repeating an event changes nothing more."""
        payload = event.payload()
        if isinstance(payload, ApiKeyRevoked):
            key_id = payload.api_key_id
            dropped = self.api_keys.forget_where(lambda p: p.api_key_id == key_id)
            log.info("API key revoked", extra={"api_key_id": str(key_id), "dropped": dropped})
        elif isinstance(payload, UserDisabled | UserDeleted):
            user_id = payload.user_id
            self.revoked.revoke(user_id, event.time.timestamp())
            self.verified.forget_user(user_id)
            dropped = self.api_keys.forget_where(lambda p: p.user_id == user_id)
            log.info(
                "user revoked",
                extra={"user_id": str(user_id), "event_type": event.type, "dropped": dropped},
            )

    async def authenticate(self, credential: Credential | None) -> Principal:
        if credential is None:
            AUTH_FAILURES.labels("missing").inc()
            raise AuthenticationRequired()
        if credential.kind == "api_key":
            return await self._api_key(credential.value)
        return await self._token(credential.value)

    async def _token(self, token: str) -> Principal:
        now = time.time()
        cached = self.verified.get(token, now)
        if cached is not None:
            return cached
        try:
            kid = token_kid(token)
            keys = await self.jwks.keys_for(kid)
            claims = verify_access_token(token, keys, issuer=self.issuer, audience=self.audience)
            principal = principal_from_claims(claims, now=now)
            if self.revoked.refuses(principal.user_id, float(claims["iat"])):
                raise InvalidToken("the user was disabled or deleted after the token was issued")
            self.verified.put(token, principal, expires=float(claims["exp"]), now=now)
            return principal
        except InvalidToken as exc:
            AUTH_FAILURES.labels("token").inc()
            log.info("access token refused", extra={"reason": str(exc)})
            raise InvalidCredentials() from None

    async def _api_key(self, api_key: str) -> Principal:
        if not _API_KEY_SHAPE.match(api_key):
            AUTH_FAILURES.labels("api_key").inc()
            raise InvalidCredentials()
        try:
            principal = await self.api_keys.resolve(api_key)
        except AuthUnavailable as exc:
            log.warning("API key resolution unavailable", extra={"error": str(exc)})
            raise ServiceUnavailable(
                "authentication is temporarily unavailable; try again shortly",
                code="upstream_unavailable",
            ) from None
        if principal is None:
            AUTH_FAILURES.labels("api_key").inc()
            raise InvalidCredentials()
        return principal


def principal_from_claims(claims: Mapping[str, Any], *, now: float) -> Principal:
    """The principal of verified access-token claims. Also refuses an `iat` in the future,
    which the token library does not check."""
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + _CLOCK_SKEW:
        raise InvalidToken("token issued in the future")
    try:
        user_id = UUID(str(claims["sub"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("token subject is not a user id") from exc
    return Principal(
        user_id=user_id, role="admin" if claims.get("role") == "admin" else "user", auth="token"
    )
