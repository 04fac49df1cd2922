"""FastAPI dependencies: the use-case services from the container, and the check that a call
to `/internal/...` comes from another KubeServe service."""

from __future__ import annotations

from fastapi import Request
from kubeserve_common.errors import Unauthorized
from kubeserve_common.security.tokens import InvalidToken, verify_internal_token

from kubeserve_auth.container import AuthContainer
from kubeserve_auth.services.api_keys import ApiKeyService
from kubeserve_auth.services.sessions import SessionService
from kubeserve_auth.services.users import UserService

INTERNAL_SUBJECT_PREFIX = "service:"


def container(request: Request) -> AuthContainer:
    the_container: AuthContainer = request.app.state.container
    return the_container


def users(request: Request) -> UserService:
    return container(request).user_service


def sessions(request: Request) -> SessionService:
    return container(request).session_service


def api_keys(request: Request) -> ApiKeyService:
    return container(request).api_key_service


async def internal_caller(request: Request) -> str:
    """The calling service (`service:<name>`), from `Authorization: Bearer <internal token>`
    signed with the shared internal secret. A user's principal token (subject = a user id) is
    not enough."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("internal endpoint: service credentials required")
    secret = container(request).settings.internal_secret.get_secret_value()
    try:
        claims = verify_internal_token(secret, token.strip())
    except InvalidToken:
        raise Unauthorized("internal endpoint: invalid service credentials") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.startswith(INTERNAL_SUBJECT_PREFIX):
        raise Unauthorized("internal endpoint: invalid service credentials")
    return subject
