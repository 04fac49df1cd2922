"""HTTP entry point of the builder service: health, metrics and `GET /builds/{version_id}`."""

from __future__ import annotations

from fastapi import FastAPI
from kubeserve_common.service import ServiceContainer
from kubeserve_common.web.app import create_service_app

from kubeserve_builder.api.routes import router
from kubeserve_builder.bootstrap import BuilderContainer, bootstrap


def create_app(
    container: ServiceContainer | None = None,
    *,
    consume: bool = True,
    manage_container: bool = True,
) -> FastAPI:
    container = container or bootstrap()
    if not isinstance(container, BuilderContainer):
        raise TypeError("the builder app needs the container made by kubeserve_builder.bootstrap")
    return create_service_app(
        container, [router], consume=consume, manage_container=manage_container
    )
