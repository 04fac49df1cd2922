"""`/internal/auth/predict`: the check an ingress controller calls before serving a prediction
itself (nginx `auth-url`, charts/model-serving). 2xx lets the request through with the tenant
in `X-KubeServe-Tenant`; 401/403/404/429 are returned to the client as they are."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from kubeserve_common.errors import BadRequest

from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest

ORIGINAL_URI = "x-original-uri"


def ingress_auth_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/internal/auth/predict")
    async def authorize(request: Request) -> Response:
        original = request.headers.get(ORIGINAL_URI)
        if not original:
            raise BadRequest("X-Original-URI is required (set by the ingress controller)")
        service: GatewayService = request.app.state.gateway.service
        client = request.client
        principal = await service.authorize_prediction(
            IncomingRequest(
                method="GET",
                path=request.scope["path"],
                query="",
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                body=None,
                peer=client.host if client else None,
            ),
            original,
        )
        return Response(status_code=204, headers={"X-KubeServe-Tenant": str(principal.user_id)})

    return router
