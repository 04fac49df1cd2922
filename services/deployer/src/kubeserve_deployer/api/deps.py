"""Dependencies of the deployer routes: the use-case service, the caller, internal callers."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from kubeserve_common.errors import Forbidden, NotFound, Unauthorized
from kubeserve_common.security.principal import Principal, get_current_principal
from kubeserve_common.security.tokens import InvalidToken, verify_internal_token

from kubeserve_deployer.services.autoscaler import LoadBoard
from kubeserve_deployer.services.deployments import DeploymentService

Caller = Annotated[Principal, Depends(get_current_principal)]


def get_deployments(request: Request) -> DeploymentService:
    service: DeploymentService = request.app.state.container.deployments
    return service


Deployments = Annotated[DeploymentService, Depends(get_deployments)]


def get_load_board(request: Request) -> LoadBoard:
    board: LoadBoard = request.app.state.container.load
    return board


Load = Annotated[LoadBoard, Depends(get_load_board)]


def check_scope(caller: Principal, deployment_id: UUID) -> None:
    """An API key limited to some deployments sees no others (404, like another tenant's)."""
    if not caller.can_use_deployment(deployment_id):
        raise NotFound(f"deployment {deployment_id} not found")


def check_unscoped(caller: Principal) -> None:
    if caller.deployment_scope is not None:
        raise Forbidden("this API key is limited to specific deployments")


async def internal_service(request: Request) -> dict[str, Any]:
    """Only other KubeServe services (`sub` = `service:<name>`, signed with the internal
    secret) may call internal routes."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("internal route: bearer token required")
    secret = request.app.state.container.settings.internal_secret.get_secret_value()
    try:
        claims = verify_internal_token(secret, token.strip())
    except InvalidToken:
        raise Unauthorized("internal route: invalid token") from None
    if not str(claims.get("sub", "")).startswith("service:"):
        raise Forbidden("internal route: callers must be services")
    return claims


InternalCaller = Annotated[dict[str, Any], Depends(internal_service)]
