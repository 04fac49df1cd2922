"""Browser sessions without a readable refresh token: with `X-KubeServe-Session: cookie`,
`POST /api/v1/auth/login` and `/auth/refresh` move the refresh token from the JSON body into an
httpOnly, SameSite=Strict cookie scoped to /api/v1/auth (Secure over https), and
`/auth/refresh` and `/auth/logout` take it from that cookie. The access token stays in the
page's memory. Requests without the header (CLI, SDK) pass through untouched.

CSRF: the cookie is sent only with same-site requests, and only requests carrying the custom
header (which a cross-site form cannot send, and a cross-origin script cannot without a CORS
preflight the gateway refuses) use it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_HEADER = b"x-kubeserve-session"
COOKIE_NAME = "ks_refresh"
COOKIE_PATH = "/api/v1/auth"
_ACTIONS = {
    "/api/v1/auth/login": "login",
    "/api/v1/auth/refresh": "refresh",
    "/api/v1/auth/logout": "logout",
}
_MAX_CAPTURE = 64 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def set_cookie_header(value: str, max_age: int, secure: bool) -> bytes:
    parts = [
        f"{COOKIE_NAME}={value}",
        f"Path={COOKIE_PATH}",
        f"Max-Age={max(max_age, 0)}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


class BrowserSessionMiddleware:
    def __init__(self, app: ASGIApp, *, trusted_proxy_hops: int = 0, secure: bool | None = None):
        self.app = app
        self.trusted_proxy_hops = trusted_proxy_hops
        self.secure = secure

    def _is_secure(self, scope: Scope) -> bool:
        if self.secure is not None:
            return self.secure
        if scope.get("scheme") == "https":
            return True
        if self.trusted_proxy_hops > 0:
            proto = _header(scope, b"x-forwarded-proto") or ""
            return proto.split(",")[-1].strip().lower() == "https"
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in _ACTIONS
            or (_header(scope, SESSION_HEADER) or "").strip().lower() != "cookie"
        ):
            await self.app(scope, receive, send)
            return
        action = _ACTIONS[scope["path"]]
        secure = self._is_secure(scope)
        clear = set_cookie_header("", 0, secure)
        if action in ("refresh", "logout"):
            token = _cookie(scope, COOKIE_NAME)
            if token is None:
                if action == "logout":
                    await _respond(send, 204, b"", [(b"set-cookie", clear)])
                else:
                    body = json.dumps(
                        {"error": {"code": "unauthorized", "message": "no session; log in again"}}
                    ).encode()
                    await _respond(send, 401, body, [(b"set-cookie", clear)])
                return
            scope, receive = _with_body(scope, receive, {"refresh_token": token})
        await self.app(scope, receive, _Rewriter(send, action, secure, clear))


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"cache-control", b"no-store"), *extra]
    if body:
        headers += [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _with_body(scope: Scope, receive: Receive, payload: dict[str, Any]) -> tuple[Scope, Receive]:
    body = json.dumps(payload).encode()
    headers = [
        (k, v)
        for k, v in scope.get("headers", [])
        if k.lower() not in (b"content-length", b"content-type", b"transfer-encoding")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    sent = False

    async def new_receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # disconnect notifications

    return {**scope, "headers": headers}, new_receive


class _Rewriter:
    """Buffers the (small) auth response to move the refresh token into the cookie."""

    def __init__(self, send: Send, action: str, secure: bool, clear: bytes) -> None:
        self.send: Callable[[Message], Awaitable[None]] = send
        self.action = action
        self.secure = secure
        self.clear = clear
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.passthrough = False

    async def __call__(self, message: Message) -> None:
        if self.passthrough:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if sum(map(len, self.chunks)) > _MAX_CAPTURE:  # not an auth answer we know: relay it
            self.passthrough = True
            assert self.start is not None
            await self.send(self.start)
            await self.send({**message, "body": b"".join(self.chunks)})
            return
        if message.get("more_body", False):
            return
        await self._finish()

    async def _finish(self) -> None:
        assert self.start is not None
        status = int(self.start["status"])
        body = b"".join(self.chunks)
        headers = [
            (k, v)
            for k, v in self.start.get("headers", [])
            if k.lower() not in (b"content-length", b"cache-control")
        ]
        if self.action in ("login", "refresh") and status == 200:
            try:
                data = json.loads(body)
                token = str(data.pop("refresh_token"))
                max_age = int(data.get("refresh_expires_in") or 0)
            except (ValueError, KeyError, TypeError):
                data = None
            if data is not None:
                body = json.dumps(data).encode()
                headers.append((b"set-cookie", set_cookie_header(token, max_age, self.secure)))
        elif self.action == "logout" or (self.action == "refresh" and 400 <= status < 500):
            headers.append((b"set-cookie", self.clear))
        headers += [(b"cache-control", b"no-store"), (b"content-length", str(len(body)).encode())]
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
