"""One error family for the whole platform, mapped to `{"error": {"code", "message"}}` bodies."""

from __future__ import annotations

from typing import Any


class KubeServeError(Exception):
    """An error a client or a consumer runner can act on; `code` is stable, machine-readable."""

    code: str = "error"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.details = details or {}
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class BadRequest(KubeServeError):
    code, http_status = "bad_request", 400


class Unauthorized(KubeServeError):
    code, http_status = "unauthorized", 401


class Forbidden(KubeServeError):
    code, http_status = "forbidden", 403


class NotFound(KubeServeError):
    code, http_status = "not_found", 404


class Conflict(KubeServeError):
    code, http_status = "conflict", 409


class PayloadTooLarge(KubeServeError):
    code, http_status = "payload_too_large", 413


class ValidationFailed(KubeServeError):
    code, http_status = "validation_error", 422


class RateLimited(KubeServeError):
    code, http_status = "rate_limited", 429


class ServiceUnavailable(KubeServeError):
    code, http_status = "unavailable", 503


# Consumer-side classification (kopf's TemporaryError / PermanentError).
class TransientError(KubeServeError):
    """Worth retrying later: a dependency is down, a lock is held, a timeout fired."""

    code, http_status = "transient", 503


class PermanentError(KubeServeError):
    """Retrying cannot help: the message is invalid or refers to something impossible."""

    code, http_status = "permanent", 422
