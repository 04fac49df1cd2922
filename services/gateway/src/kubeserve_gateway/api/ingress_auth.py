"""`/internal/auth/predict`: the check an ingress controller calls before serving a prediction
itself (nginx `auth-url`, charts/model-serving's Ingress).

nginx's auth_request accepts only three kinds of answer: 2xx lets the request through, 401 and
403 are returned to the client, and anything else becomes a 500. So this route answers only
those: 204 with the tenant in `X-KubeServe-Tenant`; 401 for missing or invalid credentials
(with the challenge); 403 for everything else that refuses - another tenant's or an unknown
deployment (indistinguishable, as everywhere), an API key scoped elsewhere, a rate limit, a
path that is not a prediction, a deployer that cannot vouch for the owner right now. The reason
is in `X-KubeServe-Auth-Error` (the error code) and the JSON body, for logs and for whoever calls
this route directly; nginx passes neither to the client. A deployment without a ready replica is
authorised: the Service has no endpoints and nginx answers 503 itself.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from kubeserve_common.errors import KubeServeError

from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest

ORIGINAL_URI = "x-original-uri"
ORIGINAL_METHOD = "x-original-method"
AUTH_ERROR = "X-KubeServe-Auth-Error"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Headers of a refusal worth keeping (nginx copies WWW-Authenticate onto a 401).
_KEPT = ("www-authenticate", "retry-after")

log = logging.getLogger(__name__)


def refusal(error: KubeServeError) -> JSONResponse:
    """The 401/403 nginx can pass on for `error`, whatever its own status."""
    status = 401 if error.http_status == 401 else 403
    headers = {k: v for k, v in error.headers.items() if k.lower() in _KEPT}
    headers[AUTH_ERROR] = error.code
    return JSONResponse(error.to_body(), status_code=status, headers=headers)


def ingress_auth_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/internal/auth/predict")
    async def authorize(request: Request) -> Response:
        original = request.headers.get(ORIGINAL_URI)
        if not original:
            return refusal(
                KubeServeError(
                    "X-Original-URI is required (set by the ingress controller)",
                    code="bad_request",
                )
            )
        method = request.headers.get(ORIGINAL_METHOD, "POST").upper()
        if method not in _METHODS:
            return refusal(KubeServeError(f"unknown method {method[:20]!r}", code="bad_request"))
        service: GatewayService = request.app.state.gateway.service
        client = request.client
        try:
            principal = await service.authorize_prediction(
                IncomingRequest(
                    method=method,
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
        except KubeServeError as exc:
            return refusal(exc)
        except Exception:
            # Fail closed, and still with an answer nginx passes on rather than a 500.
            log.exception("ingress authorisation failed")
            return refusal(KubeServeError("authorisation failed; retry shortly", code="internal"))
        return Response(status_code=204, headers={"X-KubeServe-Tenant": str(principal.user_id)})

    return router
