"""Composition root of the gateway service: the one place that builds its engine, bus, HTTP
client, caches and limiters. The HTTP app, the worker and the tests all get their container
from `bootstrap()`; tests pass settings (and a bus) here."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
from kubeserve_common.db.session import is_sqlite
from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.service import ServiceContainer, build_container
from sqlalchemy.ext.asyncio import AsyncEngine

from kubeserve_gateway.adapters.auth import HttpAuthClient
from kubeserve_gateway.adapters.deployer import HttpDeployerClient
from kubeserve_gateway.adapters.http import UpstreamClient, create_http_client
from kubeserve_gateway.adapters.rate_store import PostgresBucketStore
from kubeserve_gateway.adapters.replica_http import ReplicaPool
from kubeserve_gateway.domain.ratelimit import Limit
from kubeserve_gateway.domain.routes import RouteTable, default_routes
from kubeserve_gateway.domain.tickets import TicketIssuer
from kubeserve_gateway.services.authenticator import (
    REVOCATION_EVENTS,
    ApiKeyCache,
    Authenticator,
    JwksCache,
    RevokedUsers,
    VerifiedTokens,
)
from kubeserve_gateway.services.browser import BrowserComponents
from kubeserve_gateway.services.events import EventHub
from kubeserve_gateway.services.gateway import (
    GatewayService,
    HoldPolicy,
    RateLimits,
    StaticUpstream,
)
from kubeserve_gateway.services.load import LoadReporter, LoadTracker
from kubeserve_gateway.services.openapi import OpenApiService
from kubeserve_gateway.services.prediction_stats import PredictionStats
from kubeserve_gateway.services.prometheus_sd import PrometheusDiscovery
from kubeserve_gateway.services.ratelimiter import RateLimiter
from kubeserve_gateway.services.replicas import ROUTE_EVENTS, ReplicaResolver
from kubeserve_gateway.settings import GatewaySettings

SERVICE = "gateway"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class GatewayComponents:
    """What the gateway is made of besides the common container parts."""

    settings: GatewaySettings
    http: httpx.AsyncClient
    routes: RouteTable
    authenticator: Authenticator
    service: GatewayService
    openapi: OpenApiService
    browser: BrowserComponents
    discovery: PrometheusDiscovery | None = None
    reporter: LoadReporter | None = None

    async def close(self) -> None:
        if self.reporter is not None:
            await self.reporter.stop()
        await self.service.client.aclose()
        await self.http.aclose()


@dataclass(kw_only=True)
class GatewayContainer(ServiceContainer):
    settings: GatewaySettings
    gateway: GatewayComponents

    async def start(self, *, consume: bool = True, relay: bool = False) -> None:
        # The gateway publishes no event: its outbox stays empty, so no relay polls it.
        await super().start(consume=consume, relay=relay)
        if self.gateway.reporter is not None:
            await self.gateway.reporter.start()


def build_rate_limits(settings: GatewaySettings, engine: AsyncEngine | None) -> RateLimits:
    """The limits, with buckets shared through the database when it is PostgreSQL (several
    gateway replicas then share one budget) and in this process otherwise."""
    if not settings.rate_limit_enabled:
        return RateLimits(None)
    store = None
    mode = settings.rate_limit_store
    if mode == "database" or (mode == "auto" and not is_sqlite(settings.database_url)):
        if engine is None or is_sqlite(settings.database_url):
            raise ValueError("KUBESERVE_RATE_LIMIT_STORE=database needs a PostgreSQL database")
        store = PostgresBucketStore(engine, timeout=settings.db_timeout)
    limiter = RateLimiter(
        store,
        lease_seconds=settings.rate_limit_lease_seconds,
        lease_burst_fraction=settings.rate_limit_lease_burst_fraction,
        lease_ttl=settings.rate_limit_lease_ttl,
        max_keys=settings.rate_limit_max_keys,
    )
    return RateLimits(
        limiter,
        ip=Limit(settings.rate_limit_ip_rps, settings.rate_limit_ip_burst),
        principal=Limit(settings.rate_limit_principal_rps, settings.rate_limit_principal_burst),
        deployment=Limit(settings.rate_limit_deployment_rps, settings.rate_limit_deployment_burst),
    )


def build_components(
    settings: GatewaySettings, engine: AsyncEngine | None = None
) -> GatewayComponents:
    http = create_http_client(settings)
    routes = RouteTable(default_routes())
    auth = HttpAuthClient(
        http, settings.auth_url, settings.internal_secret.get_secret_value(), settings.http_timeout
    )
    authenticator = Authenticator(
        JwksCache(
            auth,
            ttl=settings.jwks_ttl,
            refetch_interval=settings.jwks_refetch_interval,
            max_stale=settings.jwks_max_stale,
        ),
        ApiKeyCache(
            auth,
            ttl=settings.api_key_cache_ttl,
            negative_ttl=settings.api_key_negative_ttl,
            max_entries=settings.api_key_cache_size,
            max_stale=settings.api_key_max_stale,
        ),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        verified=VerifiedTokens(
            ttl=settings.token_cache_ttl, max_entries=settings.token_cache_size
        ),
        # Entries outlive the longest token by the verifier's clock-skew leeway.
        revoked=RevokedUsers(
            ttl=settings.access_token_ttl_seconds + 5, max_entries=settings.revoked_users_max
        ),
    )
    internal = {
        "auth": settings.auth_url,
        "registry": settings.registry_url,
        "builder": settings.builder_url,
        "deployer": settings.deployer_url,
    }
    limits = build_rate_limits(settings, engine)
    upstream = UpstreamClient(
        http,
        ReplicaPool(
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            pool_timeout=settings.upstream_pool_timeout,
            max_connections=settings.upstream_max_connections,
            max_keepalive=settings.upstream_max_keepalive,
        ),
    )
    deployer = HttpDeployerClient(
        http,
        settings.deployer_url,
        settings.internal_secret.get_secret_value(),
        settings.http_timeout,
    )
    load = LoadTracker()
    service = GatewayService(
        routes=routes,
        authenticator=authenticator,
        upstreams={
            **{name: StaticUpstream(url) for name, url in internal.items()},
            "runtime": ReplicaResolver(
                deployer,
                ttl=settings.predict_route_ttl,
                max_stale=settings.predict_route_max_stale,
            ),
        },
        client=upstream,
        limits=limits,
        internal_secret=settings.internal_secret.get_secret_value(),
        trusted_proxy_hops=settings.trusted_proxy_hops,
        load=load,
        hold=HoldPolicy(settings.predict_hold_timeout, settings.predict_hold_max_queue),
    )
    gateway_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    async def report(figures: dict[str, float]) -> None:
        await deployer.report_load(gateway_id, figures)

    reporter = LoadReporter(load, report, interval=settings.load_report_interval)

    async def fetch(url: str) -> object:
        return await upstream.get_json(url, seconds=settings.http_timeout)

    openapi = OpenApiService(
        routes=routes, upstreams=internal, fetch=fetch, ttl=settings.openapi_ttl
    )
    browser = BrowserComponents(
        hub=EventHub(
            queue_size=settings.events_queue_size, max_per_user=settings.events_max_per_user
        ),
        tickets=TicketIssuer(
            settings.internal_secret.get_secret_value(), ttl=settings.events_ticket_ttl
        ),
        stats=PredictionStats(),
        deployer=deployer,
    )
    discovery = PrometheusDiscovery(
        service_urls={**internal, "gateway": settings.gateway_url},
        scrape_address=settings.prometheus_scrape_address,
        single_process=settings.prometheus_single_process,
        fetch_serving=deployer.serving_deployments,
        replicas=upstream.replicas,
    )
    return GatewayComponents(
        settings, http, routes, authenticator, service, openapi, browser, discovery, reporter
    )


def subscribe_events(container: ServiceContainer, hub: EventHub) -> None:
    """The server-sent events fan-out: every lifecycle event, on a queue of this process alone
    (transient: RabbitMQ deletes it with the connection), in order, never retried."""
    purpose = f"sse-{os.getpid()}-{secrets.token_hex(3)}"
    container.subscribe(
        purpose, ["io.kubeserve.#"], hub.handle, transient=True, prefetch=1, max_attempts=1
    )


def subscribe_routes(container: ServiceContainer, components: GatewayComponents) -> None:
    """Deployment events push into this process's route table (its own transient queue: every
    gateway process hears every change)."""
    resolver = components.service.upstreams.get("runtime")
    if not isinstance(resolver, ReplicaResolver):
        return
    purpose = f"routes-{os.getpid()}-{secrets.token_hex(3)}"
    container.subscribe(
        purpose, list(ROUTE_EVENTS), resolver.handle_event, transient=True, max_attempts=1
    )


def subscribe_revocations(container: ServiceContainer, components: GatewayComponents) -> None:
    """Disabled and deleted users and revoked API keys, on a queue of this process alone
    (transient, like the routes'): every gateway process refuses them within a delivery."""
    purpose = f"revocations-{os.getpid()}-{secrets.token_hex(3)}"
    container.subscribe(
        purpose,
        list(REVOCATION_EVENTS),
        components.authenticator.handle_revocation,
        transient=True,
        max_attempts=1,
    )


def bootstrap(
    settings: GatewaySettings | None = None, *, bus: EventBus | None = None
) -> GatewayContainer:
    settings = settings or GatewaySettings()
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    components = build_components(settings, base.engine)
    container = GatewayContainer(**base.parts(), gateway=components)  # settings included
    container.on_stop.append(components.close)
    # Ready while it can serve predictions: from its route table, with the database, the
    # broker and the deployer away alike (their checks are still reported).
    container.ready_requires = frozenset()
    subscribe_events(container, components.browser.hub)
    subscribe_routes(container, components)
    subscribe_revocations(container, components)
    return container
