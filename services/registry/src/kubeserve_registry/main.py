"""HTTP entry point of the registry service."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI
from kubeserve_common.web.app import Hosting, create_service_app

from kubeserve_registry.api.limits import PerRouteBodyLimit
from kubeserve_registry.api.routes import router
from kubeserve_registry.bootstrap import RegistryContainer, bootstrap


def create_app(container: RegistryContainer | None = None, **hosting: Unpack[Hosting]) -> FastAPI:
    container = container or bootstrap()
    settings = container.settings
    app = create_service_app(
        container,
        [router],
        # The shared limit admits an upload; every other route gets the small JSON limit below.
        max_body_bytes=settings.max_upload_body_bytes,
        **hosting,
    )
    app.add_middleware(PerRouteBodyLimit, max_bytes=settings.max_json_body_bytes)
    return app
