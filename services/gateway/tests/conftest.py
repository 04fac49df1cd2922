"""Fixtures of the gateway tests: a real gateway (uvicorn on 127.0.0.1) in front of a real
echo upstream that also plays auth (`FakeAuth`), so the proxy is tested over sockets."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.bootstrap import GatewayComponents, bootstrap
from kubeserve_gateway.main import create_app
from kubeserve_gateway.settings import GatewaySettings
from kubeserve_gateway.testing import FakeAuth, echo_upstream_app


@dataclass
class Stack:
    url: str
    upstream_url: str
    auth: FakeAuth
    gateway: GatewayComponents
    client: httpx.AsyncClient
    user_id: str

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.auth.token(self.user_id)}"}


def gateway_settings(tmp_path: Path, upstream: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "internal_secret": TEST_INTERNAL_SECRET,
        "home": tmp_path,
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "broker_url": "memory://",
        "auth_url": upstream,
        "registry_url": upstream,
        "deployer_url": upstream,
        "builder_url": upstream,
        **overrides,
    }
    return GatewaySettings(**values)


@contextlib.contextmanager
def running_gateway(settings: GatewaySettings) -> Iterator[tuple[str, GatewayComponents]]:
    container = bootstrap(settings)
    app = create_app(container)
    with serve_app(app) as url:
        yield url, app.state.gateway


@pytest.fixture
def bodies() -> list[dict[str, Any]]:
    """Request bodies the echo upstream received (path, size, complete)."""
    return []


@pytest.fixture
def echo(bodies: list[dict[str, Any]]) -> Iterator[tuple[str, FakeAuth]]:
    auth = FakeAuth()
    with serve_app(echo_upstream_app(auth, bodies)) as url:
        yield url, auth


@pytest.fixture
def make_stack(
    tmp_path: Path, echo: tuple[str, FakeAuth]
) -> Iterator[Callable[..., contextlib.AbstractAsyncContextManager[Stack]]]:
    """`async with make_stack(**setting_overrides) as stack:` a gateway in front of the echo."""
    upstream, auth = echo
    counter = iter(range(1000))

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Stack]:
        home = tmp_path / f"gw{next(counter)}"
        home.mkdir()
        with running_gateway(gateway_settings(home, upstream, **overrides)) as (url, parts):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield Stack(url, upstream, auth, parts, client, str(uuid.uuid4()))

    yield make


@pytest.fixture
async def stack(make_stack: Callable[..., Any]) -> AsyncIterator[Stack]:
    async with make_stack() as s:
        yield s
