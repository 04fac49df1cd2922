"""The public OpenAPI document: each internal service's /openapi.json, reduced to the paths the
route table publishes, rewritten under /api/v1, merged, with the gateway's security schemes.
Cached; a service that is down is left out (and retried soon) instead of failing the document."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubeserve_gateway.domain.routes import Access, RouteTable
from kubeserve_gateway.services.openapi_predict import (
    document_errors,
    error_responses,
    prediction_paths,
)
from kubeserve_gateway.services.openapi_schemas import SCHEMAS

log = logging.getLogger(__name__)

FetchJson = Callable[[str], Awaitable[Any]]
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF = "#/components/schemas/"
_FAILED_TTL = 5.0  # seconds before retrying a document that had a service missing

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "oauth2": {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": "/api/v1/auth/login", "scopes": {}}},
    },
}
AUTHENTICATED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}, {"oauth2": []}]


class OpenApiService:
    def __init__(
        self,
        *,
        routes: RouteTable,
        upstreams: Mapping[str, str],
        fetch: FetchJson,
        ttl: float,
        title: str = "KubeServe API",
        version: str = "1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = routes
        self.upstreams = dict(upstreams)
        self.fetch = fetch
        self.ttl = ttl
        self.title = title
        self.version = version
        self._clock = clock
        self._cached: dict[str, Any] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        if self._cached is not None and self._clock() < self._expires:
            return self._cached
        async with self._lock:
            if self._cached is not None and self._clock() < self._expires:
                return self._cached
            names = list(self.upstreams)
            results = await asyncio.gather(
                *(self.fetch(f"{self.upstreams[n].rstrip('/')}/openapi.json") for n in names),
                return_exceptions=True,
            )
            docs: dict[str, dict[str, Any]] = {}
            missing: list[str] = []
            for name, result in zip(names, results, strict=True):
                if isinstance(result, dict):
                    docs[name] = result
                else:
                    log.warning("OpenAPI of %s unavailable", name, extra={"error": repr(result)})
                    missing.append(name)
            document = self.merge(docs, missing)
            self._cached = document
            self._expires = self._clock() + (
                self.ttl if not missing else min(self.ttl, _FAILED_TTL)
            )
            return document

    def merge(self, docs: Mapping[str, dict[str, Any]], missing: list[str]) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        schemas: dict[str, Any] = {}
        for name, doc in docs.items():
            doc = _rename_colliding_schemas(name, doc, schemas)
            schemas.update(doc.get("components", {}).get("schemas", {}))
            for upstream_path, item in (doc.get("paths") or {}).items():
                for method, operation in item.items():
                    if method not in _METHODS or not isinstance(operation, dict):
                        continue
                    found = self.routes.public_path(name, upstream_path, method)
                    if found is None:
                        continue  # internal, health, or not routed: not part of the public API
                    route, public = found
                    operation = dict(operation)
                    operation["parameters"] = [
                        p
                        for p in operation.get("parameters", [])
                        if not str(p.get("name", "")).lower().startswith("x-kubeserve-")
                    ]
                    if not operation["parameters"]:
                        del operation["parameters"]
                    is_public = route.access is Access.PUBLIC
                    operation["security"] = [] if is_public else AUTHENTICATED
                    document_errors(public, method, operation, is_public)
                    paths.setdefault(public, {})[method] = operation
        for public, item in prediction_paths().items():
            for operation in item.values():
                operation["security"] = AUTHENTICATED
            paths[public] = item
        # FastAPI's validation-error schemas describe a body the services never send.
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.update(SCHEMAS)
        document: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {
                "title": self.title,
                "version": self.version,
                "description": "The public KubeServe API. Authenticate with `Authorization: "
                "Bearer <access token>` (from /api/v1/auth/login) or an API key (`Authorization: "
                "Bearer ks_...` or `X-API-Key: ks_...`). Errors are "
                '`{"error": {"code", "message"}}`.',
            },
            "paths": dict(sorted(paths.items())),
            "components": {
                "schemas": dict(sorted(schemas.items())),
                "responses": error_responses(),
                "securitySchemes": SECURITY_SCHEMES,
            },
        }
        if missing:
            document["x-kubeserve-unavailable"] = sorted(missing)
        return document


def _rename_colliding_schemas(
    service: str, doc: dict[str, Any], existing: Mapping[str, Any]
) -> dict[str, Any]:
    """A schema name already used by another service with a different body gets the service
    name as prefix, and every `$ref` to it in this document follows."""
    schemas = doc.get("components", {}).get("schemas", {})
    renames = {
        name: f"{service}_{name}"
        for name, body in schemas.items()
        if name in existing and existing[name] != body
    }
    if not renames:
        return doc
    doc = copy.deepcopy(doc)
    doc["components"]["schemas"] = {renames.get(k, k): v for k, v in schemas.items()}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in renames:
                node = {**node, "$ref": _REF + renames[ref[len(_REF) :]]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc)  # type: ignore[no-any-return]
