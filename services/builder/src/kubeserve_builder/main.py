"""HTTP entry point of the builder service: health, metrics and `GET /builds/{version_id}`."""

from __future__ import annotations

from fastapi import FastAPI
from kubeserve_common.web.app import create_service_app

from kubeserve_builder.api.routes import router
from kubeserve_builder.bootstrap import BuilderContainer, bootstrap


def create_app(
    container: BuilderContainer | None = None,
    *,
    consume: bool = True,
    manage_container: bool = True,
) -> FastAPI:
    container = container or bootstrap()
    return create_service_app(
        container, [router], consume=consume, manage_container=manage_container
    )
