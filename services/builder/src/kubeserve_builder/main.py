"""HTTP entry point of the builder service: health, metrics and `GET /builds/{version_id}`."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI
from kubeserve_common.web.app import Hosting, create_service_app

from kubeserve_builder.api.routes import router
from kubeserve_builder.bootstrap import BuilderContainer, bootstrap


def create_app(container: BuilderContainer | None = None, **hosting: Unpack[Hosting]) -> FastAPI:
    container = container or bootstrap()
    return create_service_app(container, [router], **hosting)
