"""Administrator routes: list accounts, disable, enable and delete one (403 for everyone else -
the routes are documented, so hiding them behind a 404 would protect nothing)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from kubeserve_common.security.principal import Principal, get_current_principal

from kubeserve_auth.api import deps
from kubeserve_auth.api.schemas import UserPageRead, UserRead
from kubeserve_auth.services.users import UserService

router = APIRouter(prefix="/auth/users", tags=["admin"])

CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
Users = Annotated[UserService, Depends(deps.users)]


@router.get("", response_model=UserPageRead, summary="All accounts, oldest first (admin)")
async def list_users(
    principal: CurrentPrincipal,
    service: Users,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> UserPageRead:
    page = await service.list_users(principal, limit=limit, offset=offset)
    return UserPageRead.model_validate(page, from_attributes=True)


@router.post("/{user_id}/disable", response_model=UserRead, summary="Disable an account (admin)")
async def disable_user(user_id: uuid.UUID, principal: CurrentPrincipal, service: Users) -> UserRead:
    return UserRead.model_validate(
        await service.set_disabled(principal, user_id, True), from_attributes=True
    )


@router.post("/{user_id}/enable", response_model=UserRead, summary="Enable an account (admin)")
async def enable_user(user_id: uuid.UUID, principal: CurrentPrincipal, service: Users) -> UserRead:
    return UserRead.model_validate(
        await service.set_disabled(principal, user_id, False), from_attributes=True
    )


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an account with its API keys and sessions; its deployments stop (admin)",
)
async def delete_user(user_id: uuid.UUID, principal: CurrentPrincipal, service: Users) -> Response:
    await service.delete_user(principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
