"""`GET /cold-start?version_id=`: a version's predicted cold start on every backend (the
gateway publishes it as `/api/v1/cold-start`). Adapter only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from kubeserve_deployer.api.deps import Caller, check_unscoped
from kubeserve_deployer.api.routes import to_prediction_read
from kubeserve_deployer.api.schemas import ColdStartRead
from kubeserve_deployer.services.cold_start import ColdStartService

router = APIRouter(tags=["cold-start"])


def get_cold_starts(request: Request) -> ColdStartService:
    service: ColdStartService = request.app.state.container.cold_starts
    return service


@router.get(
    "/cold-start",
    response_model=ColdStartRead,
    summary="Predicted cold start of a version, per backend",
    responses={404: {"description": "No such version of yours (also another tenant's)."}},
)
async def predicted_cold_start(
    caller: Caller,
    service: Annotated[ColdStartService, Depends(get_cold_starts)],
    version_id: Annotated[UUID, Query(description="One of your versions.")],
) -> ColdStartRead:
    check_unscoped(caller)
    found = await service.for_version(caller.user_id, version_id)
    predictions = [to_prediction_read(p) for p in found.predictions]
    return ColdStartRead(
        version_id=found.version_id,
        predicted_cold_start_ms={p.backend: p.total_ms for p in predictions},
        predictions=predictions,
    )
