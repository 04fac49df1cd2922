"""Routes for a user's API keys and the gateway's internal API-key resolution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from kubeserve_common.security.principal import Principal, get_current_principal

from kubeserve_auth.api import deps
from kubeserve_auth.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ApiKeyResolved,
    ApiKeyResolveRequest,
)
from kubeserve_auth.domain.models import RateLimit
from kubeserve_auth.services.api_keys import ApiKeyService

router = APIRouter(prefix="/auth/api-keys", tags=["api-keys"])
internal_router = APIRouter(prefix="/internal", tags=["internal"])

CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
Keys = Annotated[ApiKeyService, Depends(deps.api_keys)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key (the secret is shown only in this response)",
)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, service: Keys
) -> ApiKeyCreated:
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    limit = body.rate_limit
    created = await service.create(
        principal,
        name=body.name,
        deployment_ids=body.deployment_ids,
        expires_at=expires_at,
        rate_limit=RateLimit(limit.requests_per_second, limit.burst) if limit else None,
    )
    read = ApiKeyRead.model_validate(created.key, from_attributes=True)
    return ApiKeyCreated(**read.model_dump(), key=created.secret)


@router.get("", response_model=list[ApiKeyRead], summary="Your API keys (never their secrets)")
async def list_api_keys(principal: CurrentPrincipal, service: Keys) -> list[ApiKeyRead]:
    return [
        ApiKeyRead.model_validate(k, from_attributes=True)
        for k in await service.list_keys(principal)
    ]


@router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API key at once"
)
async def revoke_api_key(key_id: uuid.UUID, principal: CurrentPrincipal, service: Keys) -> Response:
    await service.revoke(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal_router.post(
    "/api-keys/resolve",
    response_model=ApiKeyResolved,
    summary="Who an API key acts for (gateway only)",
)
async def resolve_api_key(
    body: ApiKeyResolveRequest,
    _caller: Annotated[str, Depends(deps.internal_caller)],
    service: Keys,
) -> ApiKeyResolved:
    return ApiKeyResolved.model_validate(await service.resolve(body.api_key), from_attributes=True)
