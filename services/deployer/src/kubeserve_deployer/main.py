"""HTTP entry point of the deployer service."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI
from kubeserve_common.web.app import Hosting, create_service_app

from kubeserve_deployer.api.cold_start import router as cold_start_router
from kubeserve_deployer.api.logs import router as logs_router
from kubeserve_deployer.api.routes import internal, router
from kubeserve_deployer.api.usage import router as usage_router
from kubeserve_deployer.bootstrap import DeployerContainer, bootstrap


def create_app(container: DeployerContainer | None = None, **hosting: Unpack[Hosting]) -> FastAPI:
    container = container or bootstrap()
    return create_service_app(
        container,
        [router, logs_router, usage_router, cold_start_router, internal],
        **hosting,
    )
