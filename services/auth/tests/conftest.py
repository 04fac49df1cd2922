"""Fixtures of the auth service tests: the real app on uvicorn over PostgreSQL and RabbitMQ, and
an httpx client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubeserve_auth.bootstrap import bootstrap
from kubeserve_auth.main import create_app
from kubeserve_auth.settings import AuthSettings
from kubeserve_auth.testing import make_settings
from kubeserve_common.testing.servers import serve_app


@pytest.fixture
def settings_factory(
    database_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> Callable[..., AuthSettings]:
    def make(**overrides: Any) -> AuthSettings:
        base = {
            "database_url": database_url,
            "broker_url": amqp_url,
            "bus_prefix": bus_prefix,
            "home": tmp_path,
        }
        return make_settings(**{**base, **overrides})

    return make


@pytest.fixture
def serve(settings_factory: Callable[..., AuthSettings]) -> Iterator[Callable[..., str]]:
    """`serve(**setting_overrides)` starts an auth app and returns its base URL."""
    stack: list[Any] = []

    def start(**overrides: Any) -> str:
        manager = serve_app(create_app(bootstrap(settings_factory(**overrides))))
        url = manager.__enter__()
        stack.append(manager)
        return url

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
async def client(serve: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=serve(), timeout=20) as http:
        yield http
