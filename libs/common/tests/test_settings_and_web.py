"""Settings refuse default secrets outside dev mode; every app answers errors in one JSON shape;
`read_body` refuses bodies as the body-limit middleware does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from kubeserve_common.errors import BadRequest, Conflict, PayloadTooLarge
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.service import build_container
from kubeserve_common.settings import CommonSettings
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.web.app import create_service_app
from kubeserve_common.web.middleware import read_body
from pydantic import BaseModel, SecretStr, ValidationError

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "gateway" / "migrations"


def test_the_internal_secret_is_required_outside_dev_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBESERVE_DEV_MODE", raising=False)
    monkeypatch.delenv("KUBESERVE_INTERNAL_SECRET", raising=False)
    with pytest.raises(ValidationError, match="KUBESERVE_INTERNAL_SECRET is not set"):
        CommonSettings(home=tmp_path)
    assert not (tmp_path / "secrets").exists()  # nothing generated outside dev mode
    monkeypatch.setenv("KUBESERVE_INTERNAL_SECRET", "a-real-secret-from-the-environment")
    settings = CommonSettings()
    assert isinstance(settings.internal_secret, SecretStr)
    assert "a-real-secret" not in repr(settings)


@pytest.mark.parametrize("dev_mode", [False, True])
@pytest.mark.parametrize(
    "published", ["dev-internal-secret-change-me", "compose-internal-secret-change-me", "short"]
)
def test_published_or_short_secrets_are_refused_in_every_mode(
    dev_mode: bool, published: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="KUBESERVE_INTERNAL_SECRET"):
        CommonSettings(dev_mode=dev_mode, home=tmp_path, internal_secret=published)


def test_dev_mode_generates_the_secret_once_private_and_reuses_it(tmp_path: Path) -> None:
    first = CommonSettings(dev_mode=True, home=tmp_path).internal_secret.get_secret_value()
    path = tmp_path / "secrets" / "internal-secret"
    assert path.read_text() == first and len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o077 == 0  # nobody else may even list the directory
    again = CommonSettings(dev_mode=True, home=tmp_path).internal_secret.get_secret_value()
    assert again == first
    other_home = CommonSettings(dev_mode=True, home=tmp_path / "other").internal_secret
    assert other_home.get_secret_value() != first  # generated, never a constant


class Item(BaseModel):
    name: str
    count: int


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    router = APIRouter()

    @router.post("/items")
    async def create(item: Item) -> Item:
        if item.name == "taken":
            raise Conflict("an item named 'taken' exists")
        return item

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    settings = CommonSettings(
        dev_mode=True,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        broker_url="memory://",
    )
    container = build_container("gateway", settings, MIGRATIONS, bus=InMemoryBus())
    return create_service_app(container, [router], max_body_bytes=1024)


async def test_errors_share_one_json_shape(app) -> None:  # type: ignore[no-untyped-def]
    with serve_app(app) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            conflict = await client.post("/items", json={"name": "taken", "count": 1})
            assert conflict.status_code == 409
            assert conflict.json() == {
                "error": {"code": "conflict", "message": "an item named 'taken' exists"}
            }

            invalid = await client.post("/items", json={"name": "x", "count": "many"})
            assert invalid.status_code == 422
            assert "count" in invalid.json()["error"]["message"]

            missing = await client.post("/items", json={})
            assert missing.status_code == 422
            assert "name" in missing.json()["error"]["message"]

            not_json = await client.post(
                "/items", content=b"{nope", headers={"content-type": "application/json"}
            )
            assert not_json.status_code == 422
            assert not_json.json()["error"]["code"] == "validation_error"

            too_big = await client.post("/items", content=b"x" * 4096)
            assert too_big.status_code == 413
            assert too_big.json()["error"]["code"] == "payload_too_large"

            async def stream():  # type: ignore[no-untyped-def]
                for _ in range(10):
                    yield b"y" * 512

            streamed = await client.post("/items", content=stream())
            assert streamed.status_code == 413

            wrong_method = await client.delete("/items")
            assert wrong_method.status_code == 405
            assert wrong_method.json()["error"]["code"] == "method_not_allowed"

            boom = await client.get("/boom")
            assert boom.status_code == 500
            assert boom.json() == {
                "error": {"code": "internal", "message": "internal error; see the server logs"}
            }

            echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
            assert echoed.headers["x-request-id"] == "abc-123"
            hostile = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
            assert hostile.headers["x-request-id"] != "bad id\twith spaces"


def _asgi_request(headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]) -> Any:
    """An ASGI scope and a receive() that hands out `messages`, as a server would."""
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return scope, receive, pending


async def test_read_body_reads_and_refuses_as_the_body_limit_does() -> None:
    """`read_body` (the gateway's prediction entry reads bodies with it): the body whole, None
    without one, the same refusals as the middleware - and an early 413 reads what is left, so
    the client gets the answer instead of a reset connection."""
    chunks = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd"},
    ]
    scope, receive, _ = _asgi_request([(b"transfer-encoding", b"chunked")], chunks)
    assert await read_body(scope, receive, 4) == b"abcd"
    scope, receive, _ = _asgi_request([(b"content-length", b"0")], [])
    assert await read_body(scope, receive, 4) is None
    scope, receive, _ = _asgi_request([], [])
    assert await read_body(scope, receive, 4) is None

    scope, receive, _ = _asgi_request([(b"content-length", b"12abc")], [])
    with pytest.raises(BadRequest, match="invalid Content-Length"):
        await read_body(scope, receive, 4)
    over = [{"type": "http.request", "body": b"x" * 3, "more_body": True}] * 2 + [
        {"type": "http.request", "body": b"x"}
    ]
    scope, receive, left = _asgi_request([(b"content-length", b"7")], list(over))
    with pytest.raises(PayloadTooLarge, match="limit of 4 bytes") as refused:
        await read_body(scope, receive, 4)
    assert refused.value.headers == {"Connection": "close"}
    assert left == []  # drained before the refusal
    scope, receive, left = _asgi_request([(b"transfer-encoding", b"chunked")], list(over))
    with pytest.raises(PayloadTooLarge):
        await read_body(scope, receive, 4)
    assert left == []
    scope, receive, _ = _asgi_request(
        [(b"content-length", b"4")], [{"type": "http.request", "body": b"ab", "more_body": True}]
    )
    with pytest.raises(BadRequest, match="disconnected"):
        await read_body(scope, receive, 4)
