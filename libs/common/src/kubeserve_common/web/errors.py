"""The single exception-handler set: every error leaves as `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubeserve_common.errors import KubeServeError
from kubeserve_common.web.outages import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def describe_validation_errors(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A readable sentence naming each bad field, plus the structured list."""
    details, parts = [], []
    for err in errors[:20]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        msg = str(err.get("msg", "invalid"))
        details.append({"field": field, "message": msg, "type": err.get("type")})
        parts.append(f"{field}: {msg}")
    return "invalid request - " + "; ".join(parts), details


def error_headers(exc: KubeServeError) -> dict[str, str]:
    """The headers an error leaves with: its own, and on a 503 a `Retry-After` (every "try
    again later" says when; clients back off on it)."""
    headers = exc.headers
    if exc.http_status == 503 and not any(k.lower() == "retry-after" for k in headers):
        headers = {**headers, "Retry-After": str(RETRY_AFTER_SECONDS)}
    return headers


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KubeServeError)
    async def _kubeserve_error(_: Request, exc: KubeServeError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.http_status, headers=error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = describe_validation_errors(list(exc.errors()))
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))
