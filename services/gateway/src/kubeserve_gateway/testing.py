"""Test doubles for the gateway's upstreams, run as real servers on 127.0.0.1 by tests and
benchmarks: `EchoUpstream` (reports what arrived, streams, fails and stalls on request) and
`FakeAuth` (a JWKS and an API-key resolver with keys the test controls)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from kubeserve_common.security.tokens import (
    SigningKey,
    issue_access_token,
    jwks,
    verify_internal_token,
)
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from starlette.requests import ClientDisconnect


@dataclass
class FakeAuth:
    """What a fake auth serves: its signing keys (JWKS) and API keys (key -> resolve body)."""

    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    api_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    internal_secret: str = TEST_INTERNAL_SECRET
    issuer: str = "kubeserve-auth"
    audience: str = "kubeserve"
    jwks_fetches: int = 0
    resolves: int = 0

    def token(self, user_id: str, *, ttl: int = 900, **claims: Any) -> str:
        return issue_access_token(
            self.keys[0],
            subject=user_id,
            issuer=self.issuer,
            audience=self.audience,
            ttl_seconds=ttl,
            claims=claims,
        )


def echo_upstream_app(
    auth: FakeAuth | None = None, bodies: list[dict[str, Any]] | None = None
) -> FastAPI:
    """Every path echoes the request as JSON (method, path, query, headers, body size and
    sha256, read as a stream). Special paths: `/stream/{n}` streams n chunks of 64 KiB,
    `/status/{code}` answers that status with an error body, `/slow` sleeps `?s=` seconds,
    `/openapi.json` a small document. With `auth`, also `/.well-known/jwks.json` and
    `/internal/api-keys/resolve`. With `bodies`, each echoed request body is recorded there as
    {path, size, complete} - complete is False when the sender went away mid-body."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    if auth is not None:

        @app.get("/.well-known/jwks.json")
        async def jwks_document() -> dict[str, Any]:
            auth.jwks_fetches += 1
            return jwks(auth.keys)

        @app.post("/internal/api-keys/resolve")
        async def resolve(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            verify_internal_token(auth.internal_secret, header.removeprefix("Bearer "))
            auth.resolves += 1
            body = await request.json()
            found = auth.api_keys.get(body.get("api_key", ""))
            if found is None:
                return JSONResponse(
                    {"error": {"code": "unauthorized", "message": "invalid API key"}}, 401
                )
            return JSONResponse(found)

    @app.get("/openapi.json")
    async def openapi() -> dict[str, Any]:
        ok = {"200": {"description": "OK"}}
        return {
            "openapi": "3.1.0",
            "info": {"title": "echo", "version": "0"},
            "paths": {
                "/models": {"get": {"summary": "List models", "responses": ok}},
                "/models/{model_id}/versions": {
                    "post": {"summary": "Upload a version", "responses": ok}
                },
                "/deployments/{deployment_id}": {"get": {"responses": ok}},
                "/auth/login": {"post": {"responses": ok}},
                "/auth/me": {
                    "get": {
                        "parameters": [
                            {"name": "x-kubeserve-principal", "in": "header", "schema": {}}
                        ],
                        "responses": {
                            "200": {
                                "description": "OK",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Thing"}
                                    }
                                },
                            }
                        },
                    }
                },
                "/internal/api-keys/resolve": {"post": {"responses": ok}},
                "/healthz": {"get": {"responses": ok}},
            },
            "components": {"schemas": {"Thing": {"type": "object"}}},
        }

    @app.get("/stream/{chunks}")
    async def stream(chunks: int) -> StreamingResponse:
        async def body() -> Any:
            for i in range(chunks):
                yield bytes([i % 256]) * 65536
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="application/octet-stream")

    @app.api_route("/status/{code}", methods=["GET", "POST"])
    async def status(code: int) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "upstream_said_so", "message": f"status {code}"}}, code
        )

    @app.get("/slow")
    async def slow(s: float = 5.0) -> dict[str, str]:
        await asyncio.sleep(s)
        return {"status": "late"}

    @app.api_route(
        "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    async def echo(request: Request) -> JSONResponse:
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
        except ClientDisconnect:
            if bodies is not None:
                bodies.append({"path": request.url.path, "size": size, "complete": False})
            raise
        if bodies is not None:
            bodies.append({"path": request.url.path, "size": size, "complete": True})
        return JSONResponse(
            {
                "method": request.method,
                "path": request.scope["path"],  # decoded, as the upstream's router sees it
                "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
                "query": request.url.query,
                "headers": [[k, v] for k, v in request.headers.items()],
                "size": size,
                "sha256": digest.hexdigest(),
            },
            headers={"x-upstream": "echo", "set-cookie": "a=1"},
        )

    return app


class FakeDeployer:
    """The deployer's internal route lookup (`GET /internal/deployments/{id}/route`), answered
    from `routes`, which the test fills with `add`; `down` answers what the real deployer
    answers while its database is cut."""

    def __init__(self) -> None:
        self.routes: dict[str, dict[str, Any]] = {}
        self.down = False
        self.lookups = 0
        self.app = FastAPI()

        @self.app.get("/internal/deployments/{deployment_id}/route")
        async def route(deployment_id: str, request: Request) -> JSONResponse:
            self.lookups += 1
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"error": {"code": "unauthorized"}}, status_code=401)
            if self.down:
                return JSONResponse(
                    {"error": {"code": "database_unavailable", "message": "away"}},
                    status_code=503,
                    headers={"Retry-After": "2"},
                )
            found = self.routes.get(deployment_id)
            if found is None:
                return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
            return JSONResponse(found)

    def add(
        self,
        owner: str,
        endpoints: list[str],
        *,
        status: str = "Running",
        deployment_id: str | None = None,
    ) -> str:
        """A deployment of `owner` served by `endpoints`; its id."""
        deployment_id = deployment_id or str(uuid.uuid4())
        self.routes[deployment_id] = {
            "deployment_id": deployment_id,
            "owner_id": owner,
            "status": status,
            "revision": 1,
            "ready_replicas": len(endpoints),
            "endpoints": endpoints,
        }
        return deployment_id
