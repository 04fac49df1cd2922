"""The gateway's port to the auth service: its JWKS and the API-key resolution endpoint."""

from __future__ import annotations

import logging
from typing import Any, Protocol
from uuid import UUID

import httpx
from kubeserve_common.security.principal import Principal

from kubeserve_gateway.adapters.internal import InternalClient

log = logging.getLogger(__name__)


class AuthUnavailable(Exception):
    """Auth could not be asked (down, timeout, unexpected answer)."""


class AuthPort(Protocol):
    async def fetch_jwks(self) -> dict[str, Any]: ...

    async def resolve_api_key(self, api_key: str) -> Principal | None:
        """The key's principal; None when auth says the key is unknown, revoked or expired."""
        ...


class HttpAuthClient(InternalClient):
    unavailable = AuthUnavailable

    async def fetch_jwks(self) -> dict[str, Any]:
        try:
            response = await self.client.get(
                f"{self.base_url}/.well-known/jwks.json", timeout=self.timeout
            )
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthUnavailable(f"JWKS fetch failed: {type(exc).__name__}") from exc
        if not isinstance(document, dict):
            raise AuthUnavailable("JWKS is not a JSON object")
        return document

    async def resolve_api_key(self, api_key: str) -> Principal | None:
        what = "API key resolution"
        response = await self._call(
            what, "POST", "/internal/api-keys/resolve", body={"api_key": api_key}
        )
        if response.status_code in (401, 403, 404):
            return None
        self._expect(what, response, 200)
        try:
            data = response.json()
            scope = data.get("deployment_ids")
            limit = data.get("rate_limit")
            return Principal(
                user_id=UUID(str(data["user_id"])),
                role="admin" if data.get("role") == "admin" else "user",
                auth="api_key",
                api_key_id=UUID(str(data["api_key_id"])) if data.get("api_key_id") else None,
                deployment_scope=frozenset(map(str, scope)) if scope is not None else None,
                rate_limit=(
                    (float(limit["requests_per_second"]), int(limit["burst"])) if limit else None
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthUnavailable("API key resolution answered an unexpected body") from exc
