"""The gateway's calls to other services' internal routes (auth, deployer): a fresh service token
on each call, one timeout, and every failure - transport, status, body - raised as the client's
own "unavailable" error, the one its callers fall back on."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import httpx
from kubeserve_common.security.tokens import issue_internal_token
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


class InternalClient:
    """Base of `HttpAuthClient` and `HttpDeployerClient`; `unavailable` is the error they raise."""

    unavailable: ClassVar[type[Exception]]

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, internal_secret: str, timeout: float
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.internal_secret = internal_secret
        self.timeout = timeout

    async def _call(self, what: str, method: str, path: str, *, body: Any = None) -> httpx.Response:
        """`what` names the call in errors ("route lookup failed: ConnectTimeout")."""
        token = issue_internal_token(self.internal_secret, subject="service:gateway", claims={})
        try:
            return await self.client.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={"authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise self.unavailable(f"{what} failed: {type(exc).__name__}") from exc

    def _expect(self, what: str, response: httpx.Response, status: int) -> None:
        if response.status_code != status:
            raise self.unavailable(f"{what} answered {response.status_code}")

    def _parse(self, what: str, response: httpx.Response, body: TypeAdapter[T]) -> T:
        """A 200 answer's body as the contract says it is."""
        self._expect(what, response, 200)
        try:
            return body.validate_json(response.content)
        except ValidationError as exc:
            raise self.unavailable(f"{what} answered an unexpected body") from exc
