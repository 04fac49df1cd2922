"""The `route` label of the gateway's request metrics: the public route template of a proxied
request (`/api/v1/models/{id}/versions/{version}`), never an id or a name, so that per-endpoint
SLOs can be built while the label's values stay bounded.

A path segment is kept only when it is one of the literal words of the platform's APIs;
UUIDs become `{id}`, `v<N>` becomes `{version}`, numbers `{n}`, anything else `{name}`, and
paths deeper than `MAX_SEGMENTS` are cut. Unknown paths (404s) therefore add no new values
beyond a bounded set."""

from __future__ import annotations

import functools
import re

from kubeserve_gateway.domain.routes import API_PREFIX, RouteTable

MAX_SEGMENTS = 9
MEMO_MAX_PATH = 512  # longer paths are templated afresh each time, never kept
# Literal segments of the public API (auth, registry, builder, deployer, the runtime's
# protocols). A word missing here shows up as `{name}`: harmless, and easy to add.
LITERALS = frozenset(
    {
        "auth", "register", "login", "refresh", "logout", "me", "users", "disable", "enable",
        "role", "api-keys", ".well-known", "jwks.json", "models", "versions", "builds",
        "deployments", "scale", "rollback", "logs", "events", "ticket", "replicas", "predict",
        "metrics", "config", "v1", "v2", "health", "live", "ready", "infer", "report",
        "artifact", "signature", "status", "openapi.json",
    }
)  # fmt: skip
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_VERSION = re.compile(r"^v[0-9]+$")
_NUMBER = re.compile(r"^[0-9]+$")


def _segment(segment: str, previous: str) -> str:
    if segment in LITERALS:
        return segment
    if ":" in segment:  # KServe V1: /v1/models/{name}:predict
        head, _, verb = segment.partition(":")
        return f"{_segment(head, previous)}:{verb if verb in LITERALS else '{verb}'}"
    if _UUID.match(segment):
        return "{deployment_id}" if previous == "predict" else "{id}"
    if _VERSION.match(segment):
        return "{version}"
    if _NUMBER.match(segment):
        return "{n}"
    return "{name}"


def route_label(routes: RouteTable, method: str, path: str) -> str:
    """The bounded template of `method path`; `unmatched` when no public route serves it."""
    if routes.match(method, path) is None:  # memoized by the table
        return "unmatched"
    return _remembered(path) if len(path) <= MEMO_MAX_PATH else _template(path)


def _template(path: str) -> str:
    parts = [p for p in path[len(API_PREFIX) :].split("/") if p]
    out: list[str] = []
    previous = ""
    for part in parts[:MAX_SEGMENTS]:
        out.append(_segment(part, previous))
        previous = part
    if len(parts) > MAX_SEGMENTS:
        out.append("...")
    return API_PREFIX + "".join("/" + p for p in out)


# Asked on every proxied request (a prediction included), before authentication: a client
# calls the same paths again and again, so the template is remembered - bounded in entries and,
# since anyone may send long paths, in the length of the paths kept.
_remembered = functools.lru_cache(maxsize=4096)(_template)
