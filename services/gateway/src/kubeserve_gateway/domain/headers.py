"""Which headers cross the gateway, in each direction (RFC 9110 section 7.6.1 hop-by-hop rules)."""

from __future__ import annotations

from collections.abc import Iterable

from kubeserve_common.security.principal import PRINCIPAL_HEADER

Headers = list[tuple[str, str]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Internal services trust headers in this namespace; no client may ever set one.
INTERNAL_PREFIX = "x-kubeserve-"
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "cookie"})
# The gateway's server sets its own; an upstream copy would be a duplicate.
_RESPONSE_OWN = frozenset({"date", "server", "x-request-id"})


_DROP_WITH_CREDENTIALS = HOP_BY_HOP | {"host", "x-request-id"}  # precomputed: per request
_DROP = _DROP_WITH_CREDENTIALS | CREDENTIAL_HEADERS


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def upstream_request_headers(
    incoming: Iterable[tuple[str, str]],
    *,
    principal_token: str | None,
    request_id: str | None,
    client_ip: str,
    scheme: str,
    forward_credentials: bool,
) -> Headers:
    """Client headers minus hop-by-hop, Host and every `x-kubeserve-*` header (the client's
    principal header above all), plus the verified principal, request id and X-Forwarded-*."""
    incoming = list(incoming)
    drop = _DROP_WITH_CREDENTIALS if forward_credentials else _DROP
    if any(name.lower() == "connection" for name, _ in incoming):
        drop = drop | _connection_tokens(incoming)
    out: Headers = []
    forwarded_for: str | None = None
    host: str | None = None
    for name, value in incoming:
        lower = name.lower()
        if lower in drop or lower.startswith(INTERNAL_PREFIX):
            if lower == "host":
                host = value
            continue
        if lower == "x-forwarded-for":
            forwarded_for = value if forwarded_for is None else f"{forwarded_for}, {value}"
            continue
        if lower in ("x-forwarded-proto", "x-forwarded-host"):
            continue
        out.append((lower, value))
    out.append(("x-forwarded-for", f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip))
    out.append(("x-forwarded-proto", scheme))
    if host:
        out.append(("x-forwarded-host", host))
    if request_id:
        out.append(("x-request-id", request_id))
    if principal_token:
        out.append((PRINCIPAL_HEADER, principal_token))
    return out


def client_response_headers(upstream: Iterable[tuple[str, str]]) -> Headers:
    upstream = list(upstream)
    drop = HOP_BY_HOP | _connection_tokens(upstream) | _RESPONSE_OWN
    return [(n.lower(), v) for n, v in upstream if n.lower() not in drop]


def client_ip(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address: the socket peer, or with `trusted_hops` proxies in front of us,
    the entry those proxies appended to X-Forwarded-For (never one a client could forge)."""
    if trusted_hops > 0 and forwarded_for:
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        if len(entries) >= trusted_hops:
            return entries[-trusted_hops]
    return peer or "unknown"
