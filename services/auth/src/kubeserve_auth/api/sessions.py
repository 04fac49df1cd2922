"""Routes for accounts and sessions: register, login (JSON or OAuth2 form), refresh, logout, me,
and the JWKS the gateway verifies access tokens with."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from kubeserve_common.errors import BadRequest
from kubeserve_common.security.principal import Principal, get_current_principal
from pydantic import ValidationError

from kubeserve_auth.api import deps
from kubeserve_auth.api.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserRead,
)
from kubeserve_auth.domain.models import TokenPair
from kubeserve_auth.services.sessions import SessionService
from kubeserve_auth.services.users import UserService

router = APIRouter(prefix="/auth", tags=["auth"])
jwks_router = APIRouter(tags=["keys"])

_LOGIN_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string", "description": "Your email."},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
        },
    }
}


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )


async def _login_body(request: Request) -> LoginRequest:
    """Parse a JSON body or the OAuth2 password form (what FastAPI docs' Authorize sends)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest("form body is not valid UTF-8") from None
        grant = form.get("grant_type", ["password"])[0]
        if grant not in ("password", ""):
            raise BadRequest("unsupported grant_type; only 'password' is accepted")
        data = {k: v[0] for k, v in form.items() if k in ("username", "password")}
        if "username" in data:
            data["email"] = data.pop("username")
    else:
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(
                "body must be JSON {email, password} or an OAuth2 password form"
            ) from None
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    summary="Create an account",
)
async def register(
    body: RegisterRequest, service: Annotated[UserService, Depends(deps.users)]
) -> UserRead:
    user = await service.register(body.email, body.password)
    return UserRead.model_validate(user, from_attributes=True)


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Exchange email and password for tokens",
    openapi_extra=_LOGIN_OPENAPI,
)
async def login(
    request: Request, service: Annotated[SessionService, Depends(deps.sessions)]
) -> TokenResponse:
    body = await _login_body(request)
    return _tokens(await service.login(body.email, body.password))


@router.post("/refresh", response_model=TokenResponse, summary="Rotate a refresh token")
async def refresh(
    body: RefreshRequest, service: Annotated[SessionService, Depends(deps.sessions)]
) -> TokenResponse:
    return _tokens(await service.refresh(body.refresh_token))


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End the session of a refresh token"
)
async def logout(
    body: RefreshRequest, service: Annotated[SessionService, Depends(deps.sessions)]
) -> Response:
    await service.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserRead, summary="The account of the caller")
async def me(
    principal: Annotated[Principal, Depends(get_current_principal)],
    service: Annotated[UserService, Depends(deps.users)],
) -> UserRead:
    return UserRead.model_validate(await service.me(principal), from_attributes=True)


@jwks_router.get("/.well-known/jwks.json", summary="Public keys verifying access tokens")
async def jwks(request: Request, response: Response) -> dict[str, list[dict[str, str]]]:
    # Short caching: the gateway refetches on an unknown kid anyway.
    response.headers["Cache-Control"] = "public, max-age=300"
    return deps.container(request).keys.jwks()
