"""FastAPI dependencies: the registry's use cases from the app's container."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from kubeserve_registry.bootstrap import RegistryContainer
    from kubeserve_registry.services.models import ModelService
    from kubeserve_registry.services.versions import VersionService


def container(request: Request) -> RegistryContainer:
    return request.app.state.container  # type: ignore[no-any-return]


def model_service(request: Request) -> ModelService:
    return container(request).models


def version_service(request: Request) -> VersionService:
    return container(request).versions
