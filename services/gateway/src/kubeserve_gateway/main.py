"""HTTP entry point of the gateway service: the public /api/v1 surface with its middleware
(CORS, request ids, per-route body limits) around the proxy routes."""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from kubeserve_common.web.app import ServiceApp, create_service_app
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from kubeserve_gateway.api.browser import browser_router
from kubeserve_gateway.api.dashboard import Dashboard, dashboard_router, default_dashboard_dir
from kubeserve_gateway.api.ingress_auth import ingress_auth_router
from kubeserve_gateway.api.middleware import RouteBodyLimitMiddleware
from kubeserve_gateway.api.predictions import PredictionEntry
from kubeserve_gateway.api.prometheus import prometheus_router
from kubeserve_gateway.api.routes import public_router, remove_default_docs
from kubeserve_gateway.api.session import BrowserSessionMiddleware
from kubeserve_gateway.bootstrap import GatewayContainer, bootstrap
from kubeserve_gateway.domain.routes import BodyLimit


def create_app(
    container: GatewayContainer | None = None,
    *,
    consume: bool = True,
    manage_container: bool = True,
) -> ServiceApp:
    container = container or bootstrap()
    components = container.gateway
    settings = components.settings
    app = create_service_app(
        container,
        [browser_router(), ingress_auth_router(), prometheus_router(), public_router()],
        title="KubeServe gateway",
        consume=consume,
        manage_container=manage_container,
        # The outer, shared limit admits the largest body any route takes; the per-route
        # middleware below applies the limit of the route actually called.
        max_body_bytes=max(settings.gateway_max_body_bytes, settings.gateway_max_upload_bytes),
    )
    app.router.routes[:] = remove_default_docs(app.router.routes)
    app.state.gateway = components
    app.state.browser = components.browser
    # Last: the catch-all for the dashboard's pages, after every API and health route.
    app.include_router(
        dashboard_router(
            Dashboard(settings.dashboard_dir or default_dashboard_dir(), settings.grafana_url)
        )
    )
    body_limits = {
        BodyLimit.DEFAULT: settings.gateway_max_body_bytes,
        BodyLimit.UPLOAD: settings.gateway_max_upload_bytes,
    }
    # Innermost (after the shared body limit): Starlette builds the stack from this list lazily.
    app.user_middleware.append(
        Middleware(RouteBodyLimitMiddleware, routes=components.routes, limits=body_limits)
    )
    app.user_middleware.append(
        Middleware(
            BrowserSessionMiddleware,
            trusted_proxy_hops=settings.trusted_proxy_hops,
            secure=settings.session_cookie_secure,
        )
    )

    def entry(stack: ASGIApp) -> ASGIApp:
        # Predictions are answered before the stack (see PredictionEntry).
        return PredictionEntry(
            stack,
            service=components.service,
            stats=components.browser.stats,
            body_limits=body_limits,
            service_name=container.name,
        )

    app.wrap_outside(entry)
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        app.wrap_outside(  # outermost, so every answer (errors, predictions) carries CORS headers
            lambda inner: CORSMiddleware(
                inner,
                allow_origins=settings.cors_origins,
                allow_credentials=not wildcard,
                allow_methods=["*"],
                allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
                expose_headers=[
                    "x-request-id",
                    "retry-after",
                    "www-authenticate",
                    "ratelimit-limit",
                    "ratelimit-remaining",
                    "ratelimit-reset",
                ],
                max_age=600,
            )
        )
    return app
