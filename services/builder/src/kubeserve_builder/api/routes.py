"""`GET /builds/{version_id}`: a version's build status and report, for its owner only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from kubeserve_common.security.principal import Principal, get_current_principal

from kubeserve_builder.api.schemas import BuildRead

router = APIRouter(tags=["builds"])


@router.get("/builds/{version_id}", response_model=BuildRead, summary="A version's build")
async def get_build(
    version_id: UUID,
    request: Request,
    principal: Annotated[Principal, Depends(get_current_principal)],
) -> BuildRead:
    view = await request.app.state.container.queries.get(principal, version_id)
    return BuildRead(**asdict(view))
