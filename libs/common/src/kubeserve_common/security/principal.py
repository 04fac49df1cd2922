"""Who is calling: the principal the gateway verified, carried to internal services in a signed
header. Internal services trust nothing else - a client-supplied header without a valid
signature is a 401."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from fastapi import Request

from kubeserve_common.errors import Unauthorized
from kubeserve_common.logging import tenant_id_var
from kubeserve_common.security.tokens import (
    InvalidToken,
    issue_internal_token,
    verify_internal_token,
)

PRINCIPAL_HEADER = "x-kubeserve-principal"

Role = Literal["user", "admin"]
AuthMethod = Literal["token", "api_key"]


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    role: Role = "user"
    auth: AuthMethod = "token"
    api_key_id: UUID | None = None
    # Deployment ids an API key is limited to; None means every deployment of the user.
    deployment_scope: frozenset[str] | None = field(default=None)
    # An API key's own rate limit (requests per second, burst), set at its creation; None: the
    # gateway's default. Only the gateway reads it; not part of the signed header.
    rate_limit: tuple[float, int] | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_use_deployment(self, deployment_id: UUID | str) -> bool:
        return self.deployment_scope is None or str(deployment_id) in self.deployment_scope

    def to_claims(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "auth": self.auth,
            "kid_api": str(self.api_key_id) if self.api_key_id else None,
            "scope": sorted(self.deployment_scope) if self.deployment_scope is not None else None,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        try:
            scope = claims.get("scope")
            return cls(
                user_id=UUID(str(claims["sub"])),
                role="admin" if claims.get("role") == "admin" else "user",
                auth="api_key" if claims.get("auth") == "api_key" else "token",
                api_key_id=UUID(claims["kid_api"]) if claims.get("kid_api") else None,
                deployment_scope=frozenset(map(str, scope)) if scope is not None else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken("malformed principal") from exc


def encode_principal(principal: Principal, secret: str, ttl_seconds: int = 60) -> str:
    return issue_internal_token(
        secret,
        subject=str(principal.user_id),
        claims=principal.to_claims(),
        ttl_seconds=ttl_seconds,
    )


def decode_principal(token: str, secret: str) -> Principal:
    return Principal.from_claims(verify_internal_token(secret, token))


async def get_current_principal(request: Request) -> Principal:
    """FastAPI dependency for internal services: the gateway-verified caller, or 401."""
    token = request.headers.get(PRINCIPAL_HEADER)
    if not token:
        raise Unauthorized("authentication required")
    secret = request.app.state.container.settings.internal_secret.get_secret_value()
    try:
        principal = decode_principal(token, secret)
    except InvalidToken:
        raise Unauthorized("invalid credentials") from None
    tenant_id_var.set(str(principal.user_id))
    return principal
