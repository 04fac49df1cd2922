"""HTTP entry point of the auth service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Unpack

from fastapi import APIRouter, FastAPI
from kubeserve_common.web.app import Hosting, create_service_app

from kubeserve_auth.api import admin, api_keys, sessions
from kubeserve_auth.bootstrap import bootstrap
from kubeserve_auth.container import AuthContainer

log = logging.getLogger(__name__)


def _warm_up(container: AuthContainer) -> APIRouter:
    """A router whose lifespan precomputes the dummy password hash, so even the first login of
    an unknown email costs what a real one does."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(container.hasher.warm_up())
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task

    return APIRouter(lifespan=lifespan)


def create_app(container: AuthContainer | None = None, **hosting: Unpack[Hosting]) -> FastAPI:
    container = container or bootstrap()
    return create_service_app(
        container,
        [
            sessions.router,
            sessions.jwks_router,
            api_keys.router,
            api_keys.internal_router,
            admin.router,
            _warm_up(container),
        ],
        title="KubeServe auth",
        max_body_bytes=container.settings.max_body_bytes,
        **hosting,
    )
