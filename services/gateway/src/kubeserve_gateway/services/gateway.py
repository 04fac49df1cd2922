"""The gateway's one use case: take a public request, rate-limit it, authenticate it, check the
route's access rule, and forward it to its upstream with the verified principal."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote, unquote

from kubeserve_common.caching import Lru
from kubeserve_common.errors import BadRequest, Forbidden, NotFound, RateLimited
from kubeserve_common.security.principal import Principal, encode_principal

from kubeserve_gateway.adapters.http import UpstreamClient, UpstreamResponse
from kubeserve_gateway.domain.errors import (
    AuthenticationRequired,
    InvalidCredentials,
    NoReadyReplica,
    UpstreamDropped,
    UpstreamUnavailable,
)
from kubeserve_gateway.domain.headers import client_ip, upstream_request_headers
from kubeserve_gateway.domain.ratelimit import Decision, Limit, tighter
from kubeserve_gateway.domain.routes import Access, RouteMatch, RouteTable
from kubeserve_gateway.metrics import AUTH_FAILURES, RATE_LIMITED
from kubeserve_gateway.services.authenticator import (
    Authenticator,
    Credential,
    extract_credential,
)
from kubeserve_gateway.services.load import LoadTracker, ScaledToZero
from kubeserve_gateway.services.ratelimiter import RateLimiter

_PRINCIPAL_TTL = 60  # seconds an internal principal token is valid
_PRINCIPAL_CACHE_SIZE = 10_000
_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar minus percent: kept as they are


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    # Streamed, or already read (predictions: the entry reads them whole, within its limit).
    body: AsyncIterable[bytes] | bytes | None
    peer: str | None
    scheme: str = "http"
    request_id: str | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class UpstreamResolver(Protocol):
    """Where a matched request goes: base URLs to try in order. One for the internal services;
    the ready replicas of the deployment in `match` for predictions."""

    # True when candidates are interchangeable replicas: a refused connection moves on to the
    # next one (the body is buffered for that) and finally re-asks for fresh candidates.
    failover: bool

    async def candidates(self, match: RouteMatch, principal: Principal | None) -> list[str]: ...

    def forget(self, key: str) -> None:
        """A candidate refused a connection: drop what was cached for `key`."""
        ...


class StaticUpstream:
    failover = False

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/")

    async def candidates(self, match: RouteMatch, principal: Principal | None) -> list[str]:
        return [self.url]

    def forget(self, key: str) -> None:
        return None


class MethodNotAllowed(NotFound):
    code, http_status = "method_not_allowed", 405


@dataclass(frozen=True)
class HoldPolicy:
    """How long a prediction for a deployment scaled to zero waits for a replica, and how many
    may wait per deployment, before a 503 with Retry-After."""

    timeout: float = 30.0
    max_per_deployment: int = 100


@dataclass
class RateLimits:
    """Who is limited how: per client IP only where nobody is authenticated (public routes,
    failed authentications), per API key (its own limit, else `principal`) or user session,
    and per deployment on predictions (after its ownership was checked, so nobody can drain
    another tenant's bucket). `limiter` None disables rate limiting."""

    limiter: RateLimiter | None
    ip: Limit = field(default_factory=lambda: Limit(100.0, 200))
    principal: Limit = field(default_factory=lambda: Limit(1000.0, 2000))
    deployment: Limit = field(default_factory=lambda: Limit(2000.0, 4000))

    _buckets: Lru[tuple[object, ...], tuple[str, Limit]] = field(
        default_factory=lambda: Lru(_PRINCIPAL_CACHE_SIZE), init=False, repr=False
    )

    def for_principal(self, principal: Principal) -> tuple[str, Limit]:
        """The bucket of `principal` and its limit (kept: asked on every request)."""
        key = (principal.user_id, principal.api_key_id, principal.rate_limit)
        bucket = self._buckets.get(key)
        if bucket is None:
            if principal.api_key_id is not None:
                own = principal.rate_limit
                bucket = f"key:{principal.api_key_id}", Limit(*own) if own else self.principal
            else:
                bucket = f"user:{principal.user_id}", self.principal
            self._buckets.put(key, bucket)
        return bucket


class GatewayService:
    def __init__(
        self,
        *,
        routes: RouteTable,
        authenticator: Authenticator,
        upstreams: Mapping[str, UpstreamResolver],
        client: UpstreamClient,
        limits: RateLimits,
        internal_secret: str,
        trusted_proxy_hops: int = 0,
        load: LoadTracker | None = None,
        hold: HoldPolicy | None = None,
    ) -> None:
        self.routes = routes
        self.authenticator = authenticator
        self.upstreams = dict(upstreams)
        self.client = client
        self.limits = limits
        self.internal_secret = internal_secret
        self.trusted_proxy_hops = trusted_proxy_hops
        # Predictions in flight (autoscaling signal, least-in-flight spreading, holding a
        # request while a deployment scaled to zero wakes): services/load.py.
        self.load = load
        self.hold = hold or HoldPolicy()
        self._principal_tokens: Lru[Principal, tuple[float, str]] = Lru(_PRINCIPAL_CACHE_SIZE)

    def client_ip(self, request: IncomingRequest) -> str:
        return client_ip(request.peer, request.header("x-forwarded-for"), self.trusted_proxy_hops)

    async def handle(self, request: IncomingRequest) -> UpstreamResponse:
        ip = self.client_ip(request)
        if not safe_path(request.path):
            # `..` (even percent-encoded: the server decodes it) would let the upstream URL
            # climb out of the route's prefix, e.g. to an internal endpoint.
            raise BadRequest("invalid path: no '.' or '..' segments, no control characters")
        match = self.routes.match(request.method, request.path)
        if match is None:
            if self.routes.path_exists(request.path):
                raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
            raise NotFound(f"no such route: {request.path}")
        principal, pacing = await self._admit(request, match, ip)
        resolver = self.upstreams.get(match.route.upstream)
        if resolver is None:
            raise UpstreamUnavailable(f"no upstream configured for {match.route.name}")
        try:
            bases: list[str] | None = await resolver.candidates(match, principal)
        except ScaledToZero:
            if self.load is None or not resolver.failover:
                raise
            bases = None  # the owner was checked: hold the request below
        if match.route.upstream == "runtime" and match.deployment_id:
            pacing = await self.limit_deployment(match.deployment_id, pacing)
        response = await self._forward(request, match, principal, ip, resolver, bases)
        if pacing is not None:
            response.raw_headers.extend(pacing.raw_headers())
        return response

    async def _forward(
        self,
        request: IncomingRequest,
        match: RouteMatch,
        principal: Principal | None,
        ip: str,
        resolver: UpstreamResolver,
        bases: list[str] | None,
    ) -> UpstreamResponse:
        # The server decoded the path; encode it again so a decoded `?`, `#` or `%` stays part
        # of the path upstream instead of starting a query or a fragment.
        path = quote(match.upstream_path, safe=_PATH_SAFE)
        suffix = path + (f"?{request.query}" if request.query else "")
        headers = upstream_request_headers(
            request.headers,
            principal_token=self._principal_token(principal) if principal else None,
            request_id=request.request_id,
            client_ip=ip,
            scheme=request.scheme,
            forward_credentials=match.route.forward_credentials,
        )
        if not resolver.failover:
            assert bases is not None
            return await self.client.send(
                match.route.upstream, request.method, bases[0] + suffix, headers, request.body
            )
        if self.load is None:
            return await self._to_replicas(
                request, match, principal, resolver, bases, suffix, headers
            )
        with self.load.track(match.deployment_id or ""):
            return await self._to_replicas(
                request, match, principal, resolver, bases, suffix, headers
            )

    async def _to_replicas(
        self,
        request: IncomingRequest,
        match: RouteMatch,
        principal: Principal | None,
        resolver: UpstreamResolver,
        bases: list[str] | None,
        suffix: str,
        headers: list[tuple[str, str]],
    ) -> UpstreamResponse:
        # Several replicas: keep the (size-limited) body so it can be replayed on the next
        # replica when one refuses the connection - it never reached that one.
        body = await _buffer(request.body)
        deployment_id = match.deployment_id or ""

        async def lookup() -> list[str]:
            return await resolver.candidates(match, principal)

        async def held() -> list[str]:
            assert self.load is not None
            return await self.load.hold(
                deployment_id,
                lookup,
                resolver.forget,
                timeout=self.hold.timeout,
                max_held=self.hold.max_per_deployment,
            )

        if bases is None:
            bases = await held()
        tried: set[str] = set()
        dropped = False
        for fresh in (False, True):
            if fresh:
                # Every cached replica refused: the deployment may have moved or gone. Ask
                # again (a deleted deployment becomes a 404 here) and try what is new.
                resolver.forget(deployment_id)
                try:
                    bases = await lookup()
                except ScaledToZero:
                    if self.load is None:
                        raise
                    bases = await held()  # it went to zero under us: wait for it
            if self.load is not None:
                bases = self.load.order(bases)
            for base in bases:
                if base in tried:
                    continue
                tried.add(base)
                try:
                    if self.load is None:
                        return await self.client.send_buffered(
                            match.route.upstream, request.method, base + suffix, headers, body
                        )
                    with self.load.sending(base):
                        return await self.client.send_buffered(
                            match.route.upstream, request.method, base + suffix, headers, body
                        )
                except UpstreamDropped:
                    if dropped:  # retried once already: a request that kills replicas stops
                        raise
                    dropped = True
                    continue
                except UpstreamUnavailable:
                    continue
        raise UpstreamUnavailable(
            "no replica of this deployment accepted the request; retry shortly",
            headers={"Retry-After": "2"},
        )

    def _principal_token(self, principal: Principal) -> str:
        """The signed principal header, reused for half its lifetime (one HMAC per principal
        every 30 s instead of one per request)."""
        now = time.monotonic()
        cached = self._principal_tokens.get(principal)
        if cached is not None and cached[0] > now:
            return cached[1]
        token = encode_principal(principal, self.internal_secret, ttl_seconds=_PRINCIPAL_TTL)
        self._principal_tokens.put(principal, (now + _PRINCIPAL_TTL / 2, token))
        return token

    async def authorize_prediction(self, request: IncomingRequest, original_uri: str) -> Principal:
        """For an ingress that serves predictions itself (nginx auth-url): may the caller of
        `request.method original_uri` call that deployment? The same checks as a proxied
        prediction - rate limits, credentials, API-key scope, ownership (404 for another
        tenant's) - without forwarding anything. Readiness is not asked: with no ready replica
        the ingress answers 503 itself."""
        ip = self.client_ip(request)
        # Judge the path nginx routed, not the raw one: it matched its locations on the decoded,
        # dot-segment-resolved URI, so a raw `/predict/{mine}/v2/%2e%2e/%2e%2e/{theirs}/...`
        # reaches *their* Ingress. Decoded, dot segments are refused below, and then both
        # readings name the same deployment.
        path = unquote(original_uri.split("?", 1)[0])
        match = self.routes.match(request.method, path)
        if match is None or match.route.upstream != "runtime" or not safe_path(path):
            raise NotFound(f"not a prediction path: {path[:200]}")
        principal, pacing = await self._admit(request, match, ip)
        assert principal is not None  # prediction routes are never public
        resolver = self.upstreams.get("runtime")
        if resolver is None:
            raise UpstreamUnavailable("predictions are not configured on this gateway")
        try:
            await resolver.candidates(match, principal)  # 404 for another tenant's deployment
        except NoReadyReplica:
            pass  # the caller's own deployment, just not ready
        if match.deployment_id:
            await self.limit_deployment(match.deployment_id, pacing)
        return principal

    async def _admit(
        self, request: IncomingRequest, match: RouteMatch, ip: str
    ) -> tuple[Principal | None, Decision | None]:
        """The caller and its rate-limit decision: public routes spend the client IP's
        bucket, authenticated ones the key's (or session's); a failed authentication spends
        the IP's too, so guessing credentials is limited where nobody is known."""
        if match.route.access is Access.PUBLIC:
            pacing = await self.limit_ip(ip)
            return await self.principal_for(request, match), pacing
        try:
            principal = await self.principal_for(request, match)
        except (AuthenticationRequired, InvalidCredentials):
            await self.limit_ip(ip)
            raise
        assert principal is not None
        return principal, await self.limit_principal(principal)

    async def limit_ip(self, ip: str) -> Decision | None:
        return await self._limit(f"ip:{ip}", self.limits.ip, "ip")

    async def limit_principal(self, principal: Principal) -> Decision | None:
        key, limit = self.limits.for_principal(principal)
        return await self._limit(key, limit, "key" if key.startswith("key:") else "user")

    async def limit_deployment(
        self, deployment_id: str, pacing: Decision | None = None
    ) -> Decision | None:
        decision = await self._limit(
            f"deployment:{deployment_id}", self.limits.deployment, "deployment"
        )
        return tighter(pacing, decision) if decision is not None else pacing

    async def principal_for(self, request: IncomingRequest, match: RouteMatch) -> Principal | None:
        """The verified caller of `request` on `match` (None on a public route without valid
        credentials), after the route's access and deployment-scope rules. Raises 401/403."""
        credential = extract_credential(
            request.header("authorization"), request.header("x-api-key")
        )
        if match.route.access is Access.PUBLIC:
            return await self._optional(credential)
        principal = await self.authenticator.authenticate(credential)
        check_deployment_scope(principal, match, request.method)
        return principal

    async def _optional(self, credential: Credential | None) -> Principal | None:
        # A public route (login, refresh...) must work even when a stale token is still sent.
        if credential is None:
            return None
        try:
            return await self.authenticator.authenticate(credential)
        except Exception:
            return None

    async def _limit(self, key: str, limit: Limit, bucket: str) -> Decision | None:
        limiter = self.limits.limiter
        if limiter is None:
            return None
        decision = await limiter.hit(key, limit)
        if not decision.allowed:
            RATE_LIMITED.labels(bucket).inc()
            raise RateLimited(
                f"too many requests for this {_BUCKET_NAMES[bucket]} "
                f"({limit.rate:g}/s, burst {limit.burst}); retry after "
                f"{decision.retry_after_header} s",
                headers=decision.headers(),
            )
        return decision


_BUCKET_NAMES = {
    "ip": "address",
    "key": "API key",
    "user": "session",
    "deployment": "deployment",
}


async def _buffer(body: AsyncIterable[bytes] | bytes | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return b"".join([chunk async for chunk in body])


# A control character anywhere, or a path segment that is exactly `.` or `..`.
_UNSAFE_PATH = re.compile(r"[\x00-\x1f\x7f]|(?:^|/)\.\.?(?:/|$)")


def safe_path(path: str) -> bool:
    return _UNSAFE_PATH.search(path) is None


def check_deployment_scope(principal: Principal, match: RouteMatch, method: str) -> None:
    """An API key limited to some deployments may only be used on routes about one of them
    (and there only with the methods the route allows such keys); anywhere else (models, API
    keys, ...) it could widen its own power, so it is refused."""
    if principal.deployment_scope is None:
        return
    deployment_id = match.deployment_id
    if deployment_id is None or not match.allows_scoped_key(method):
        AUTH_FAILURES.labels("scope").inc()
        raise Forbidden("this API key is limited to specific deployments")
    if not principal.can_use_deployment(deployment_id):
        AUTH_FAILURES.labels("scope").inc()
        raise Forbidden(f"this API key is not valid for deployment {deployment_id}")
