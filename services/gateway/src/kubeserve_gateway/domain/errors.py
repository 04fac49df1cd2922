"""Gateway-specific errors on top of the platform's error family (JSON error shape)."""

from __future__ import annotations

from kubeserve_common.errors import KubeServeError, ServiceUnavailable, Unauthorized

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class AuthenticationRequired(Unauthorized):
    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, headers=BEARER_CHALLENGE)


class InvalidCredentials(Unauthorized):
    def __init__(self, message: str = "invalid or expired credentials") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class UpstreamUnavailable(ServiceUnavailable):
    """The upstream refused the connection or is not there."""

    code = "upstream_unavailable"


class UpstreamDropped(UpstreamUnavailable):
    """A replica accepted the connection, then closed it before answering: the request may
    have reached it, so it is retried on another replica once (predictions are idempotent by
    contract), not on every replica."""


class NoReadyReplica(UpstreamUnavailable):
    """The caller's deployment exists but none of its replicas is ready (the owner was
    checked before this is raised)."""


class WakeBlocked(UpstreamUnavailable):
    """The caller's deployment is scaled to zero and their quota has no room for the replica
    a request would start: answered at once instead of holding the request until it times out."""

    code = "wake_blocked_by_quota"


class UpstreamTimeout(KubeServeError):
    code, http_status = "upstream_timeout", 504


class BadGateway(KubeServeError):
    """The upstream answered with something that is not HTTP, or dropped the connection."""

    code, http_status = "bad_gateway", 502
