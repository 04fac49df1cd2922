"""Routes of the registry. The gateway maps the public `/api/v1/models...` onto these and adds
the verified caller in the signed principal header; every route requires it, and another
tenant's model or version is a 404, never a 403."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from kubeserve_common.errors import BadRequest, PayloadTooLarge
from kubeserve_common.security.principal import Principal, get_current_principal
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from kubeserve_registry.api.deps import container, model_service, version_service
from kubeserve_registry.api.multipart import MultipartStream
from kubeserve_registry.api.schemas import (
    ArtifactRead,
    ModelCreate,
    ModelRead,
    ModelUpdate,
    Page,
    VersionRead,
    VersionSummary,
)
from kubeserve_registry.services.models import ModelService
from kubeserve_registry.services.versions import VersionService
from kubeserve_registry.services.views import ModelView, VersionView

router = APIRouter(prefix="/models", tags=["models"])

Caller = Annotated[Principal, Depends(get_current_principal)]
Models = Annotated[ModelService, Depends(model_service)]
Versions = Annotated[VersionService, Depends(version_service)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]


def _declared(view: ModelView | VersionView, schema: type[BaseModel]) -> dict[str, Any]:
    """The view's values of the fields `schema` declares under the same name; the mapping
    functions below add the ones shaped differently."""
    return {name: getattr(view, name) for name in schema.model_fields if hasattr(view, name)}


def to_model_read(m: ModelView) -> ModelRead:
    latest = m.latest
    summary = None if latest is None else VersionSummary(**_declared(latest, VersionSummary))
    return ModelRead(**_declared(m, ModelRead), latest_version=summary)


def to_version_read(v: VersionView) -> VersionRead:
    artifact = ArtifactRead(filename=v.filename, size=v.size, sha256=v.sha256, uri=v.artifact_uri)
    return VersionRead(**_declared(v, VersionRead), artifact=artifact)


# -- models ------------------------------------------------------------------------------------
@router.post("", status_code=201, summary="Create a model")
async def create_model(body: ModelCreate, caller: Caller, models: Models) -> ModelRead:
    view = await models.create(caller.user_id, body.name, body.framework, body.description)
    return to_model_read(view)


@router.get("", summary="List your models")
async def list_models(
    caller: Caller,
    models: Models,
    limit: Limit = 20,
    offset: Offset = 0,
    sort: Literal["created_at", "-created_at", "name", "-name"] = "-created_at",
) -> Page[ModelRead]:
    views, total = await models.list(caller.user_id, limit=limit, offset=offset, sort=sort)
    return Page(items=[to_model_read(v) for v in views], total=total, limit=limit, offset=offset)


@router.get("/{model_id}", summary="Get a model")
async def get_model(model_id: UUID, caller: Caller, models: Models) -> ModelRead:
    return to_model_read(await models.get(caller.user_id, model_id))


@router.patch("/{model_id}", summary="Rename a model or change its description")
async def update_model(
    model_id: UUID, body: ModelUpdate, caller: Caller, models: Models
) -> ModelRead:
    view = await models.update(
        caller.user_id, model_id, name=body.name, description=body.description
    )
    return to_model_read(view)


@router.delete("/{model_id}", status_code=204, summary="Delete a model, its versions and artifacts")
async def delete_model(model_id: UUID, caller: Caller, models: Models) -> Response:
    await models.delete(caller.user_id, model_id)
    return Response(status_code=204)


# -- versions ----------------------------------------------------------------------------------
@router.post(
    "/{model_id}/versions",
    status_code=201,
    summary="Upload a version (multipart: 'model' file, optional 'requirements' file)",
)
async def upload_version(
    model_id: UUID, request: Request, caller: Caller, versions: Versions
) -> VersionRead:
    settings = container(request).settings
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > settings.max_upload_body_bytes
    ):
        raise PayloadTooLarge(
            f"upload exceeds the limit of {settings.max_artifact_bytes} bytes for the model file"
        )
    form = MultipartStream(request.headers.get("content-type"), request.stream())
    try:
        version = await versions.upload(caller.user_id, model_id, form.parts())
    except ClientDisconnect:
        # Nothing was kept (the service cleaned up); nobody is listening for this answer.
        raise BadRequest("the client disconnected mid-upload", code="client_disconnected") from None
    return to_version_read(version)


@router.get("/{model_id}/versions", summary="List a model's versions")
async def list_versions(
    model_id: UUID,
    caller: Caller,
    versions: Versions,
    limit: Limit = 20,
    offset: Offset = 0,
    sort: Literal["version", "-version", "created_at", "-created_at"] = "-version",
) -> Page[VersionRead]:
    items, total = await versions.list(
        caller.user_id, model_id, limit=limit, offset=offset, sort=sort
    )
    return Page(items=[to_version_read(v) for v in items], total=total, limit=limit, offset=offset)


@router.get("/{model_id}/versions/{ref}", summary="Get a version by tag (v3) or id")
async def get_version(model_id: UUID, ref: str, caller: Caller, versions: Versions) -> VersionRead:
    return to_version_read(await versions.get(caller.user_id, model_id, ref))


@router.get(
    "/{model_id}/versions/{ref}/artifact",
    summary="Download the model file (streamed; ?redirect=true for a short-lived URL on S3)",
    response_model=None,
)
async def download_artifact(
    model_id: UUID,
    ref: str,
    request: Request,
    caller: Caller,
    versions: Versions,
    redirect: bool = False,
) -> StreamingResponse | RedirectResponse:
    if redirect:
        ttl = container(request).settings.presign_ttl_seconds
        url = await versions.artifact_url(caller.user_id, model_id, ref, expires_in=ttl)
        if url is not None:
            return RedirectResponse(url, status_code=307)
    download = await versions.open_artifact(caller.user_id, model_id, ref)
    v = download.version
    return StreamingResponse(
        download.chunks,
        media_type="application/octet-stream",
        headers={
            "content-length": str(download.size),
            "content-disposition": f'attachment; filename="{v.filename}"',
            "x-kubeserve-sha256": v.sha256,
            "x-kubeserve-version": v.version_tag,
        },
    )


@router.delete("/{model_id}/versions/{ref}", status_code=204, summary="Delete a version")
async def delete_version(model_id: UUID, ref: str, caller: Caller, versions: Versions) -> Response:
    await versions.delete(caller.user_id, model_id, ref)
    return Response(status_code=204)
