"""What `Client` and `AsyncClient` share: errors, credentials and where they come from, the
retry policy for idempotent calls on 503, and decoding of the JSON error envelope."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from kubeserve_sdk import config

API = "/api/v1"
T = TypeVar("T")
# Safe to send twice: HTTP's idempotent methods, and predictions (idempotent by contract: the
# runtime keeps no state between requests).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class APIError(Exception):
    """The API answered with an error; `code` and `message` come from its JSON error body."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status, self.code, self.message, self.body = status, code, message, body


class TimeoutExpired(Exception):
    """Waiting for a version or deployment to settle took longer than allowed."""


@dataclass
class Credentials:
    """What a client authenticates with: a token pair from login, or an API key."""

    access_token: str | None = None
    refresh_token: str | None = None
    api_key: str | None = None
    on_refresh: Callable[[Credentials], None] | None = field(default=None, repr=False)


def resolve(
    base_url: str | None, credentials: Credentials | None, api_key: str | None
) -> tuple[str, Credentials]:
    """The gateway URL and credentials: the arguments first, then `KUBESERVE_URL` /
    `KUBESERVE_API_KEY`, then what `kubeserve login` saved (whose refreshed tokens are saved
    back), then the default URL and no credentials."""
    saved = config.load()
    url = base_url or os.environ.get("KUBESERVE_URL") or saved.get("url") or config.DEFAULT_URL
    url = url.rstrip("/")
    if credentials is not None:
        return url, credentials
    key = api_key or os.environ.get("KUBESERVE_API_KEY")
    if key:
        return url, Credentials(api_key=key)
    if saved.get("access_token") and (saved.get("url") or "").rstrip("/") in ("", url):
        return url, Credentials(
            access_token=saved.get("access_token"),
            refresh_token=saved.get("refresh_token"),
            on_refresh=config.token_saver(url),
        )
    return url, Credentials()


@dataclass(frozen=True)
class RetryPolicy:
    """Idempotent calls answered 503 (a dependency is away: the platform says when to come
    back with Retry-After), 429 (rate limited, likewise) or refused at connect are tried again,
    up to `retries` times, waiting Retry-After when given (at most `max_wait`), else an
    exponential backoff with jitter."""

    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 30.0
    statuses: frozenset[int] = frozenset({429, 503})

    def applies(self, method: str, path: str) -> bool:
        return method.upper() in IDEMPOTENT_METHODS or path.startswith("/predict/")

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after(response.headers.get("retry-after")) if response is not None else None
        if after is not None:
            return min(after, self.max_wait)
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 (not security)
        return float(min(self.backoff * 2**attempt, self.max_backoff) * jitter)


NO_RETRY = RetryPolicy(retries=0)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def should_retry(
    policy: RetryPolicy, attempt: int, method: str, path: str, status: int | None
) -> bool:
    """`status` None: the connection was refused (nothing reached the server)."""
    if attempt >= policy.retries or not policy.applies(method, path):
        return False
    return status is None or status in policy.statuses


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    kwargs: dict[str, Any] = field(default_factory=dict)
    auth: bool = True


def auth_headers(creds: Credentials) -> dict[str, str]:
    if creds.api_key:
        return {"Authorization": f"Bearer {creds.api_key}"}
    if creds.access_token:
        return {"Authorization": f"Bearer {creds.access_token}"}
    return {}


def store_tokens(creds: Credentials, tokens: Any) -> None:
    creds.access_token = tokens["access_token"]
    creds.refresh_token = tokens.get("refresh_token")
    if creds.on_refresh:
        creds.on_refresh(creds)


def transport_error(exc: httpx.TransportError, base_url: str) -> APIError:
    if isinstance(exc, httpx.TimeoutException):
        return APIError(0, "timeout", f"{base_url} did not answer in time")
    return APIError(0, "unreachable", f"cannot reach KubeServe at {base_url}: {exc}")


def decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        if response.is_error:
            raise APIError(response.status_code, "error", response.reason_phrase)
        return None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if response.is_error:
        raise error_of(response.status_code, body, response.text, response.reason_phrase)
    return body


def error_of(status: int, body: Any, text: str, reason: str) -> APIError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return APIError(
            status, str(error.get("code", "error")), str(error.get("message", "")), body
        )
    if isinstance(error, str):  # the model runtime's OIP error shape
        return APIError(status, "prediction_error", error, body)
    return APIError(status, "error", text[:500] or reason, body)


def items(body: Any) -> list[Any]:
    if isinstance(body, dict) and "items" in body:
        return list(body["items"])
    return list(body or [])
