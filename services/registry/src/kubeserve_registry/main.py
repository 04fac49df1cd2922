"""HTTP entry point of the registry service."""

from __future__ import annotations

from fastapi import FastAPI
from kubeserve_common.web.app import create_service_app

from kubeserve_registry.api.limits import PerRouteBodyLimit
from kubeserve_registry.api.routes import router
from kubeserve_registry.bootstrap import RegistryContainer, bootstrap


def create_app(
    container: RegistryContainer | None = None,
    *,
    consume: bool = True,
    manage_container: bool = True,
) -> FastAPI:
    container = container or bootstrap()
    settings = container.settings
    app = create_service_app(
        container,
        [router],
        consume=consume,
        manage_container=manage_container,
        # The shared limit admits an upload; every other route gets the small JSON limit below.
        max_body_bytes=settings.max_upload_body_bytes,
    )
    app.add_middleware(PerRouteBodyLimit, max_bytes=settings.max_json_body_bytes)
    return app
