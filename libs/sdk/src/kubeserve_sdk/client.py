"""A small synchronous client over the gateway's `/api/v1` (httpx, no other dependency)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx

API = "/api/v1"
TERMINAL_VERSION = {"Ready", "Failed"}
TERMINAL_DEPLOYMENT = {"Running", "Failed", "Stopped"}
Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


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


class _ProgressReader:
    """A file wrapper counting bytes as httpx streams the multipart body."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None) -> None:
        self.raw, self.total, self.progress, self.sent = raw, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.sent += len(chunk)
        if self.progress:
            self.progress(self.sent, self.total)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class Client:
    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        upload_timeout: float = 3600.0,
    ) -> None:
        self.base_url = (
            base_url or os.environ.get("KUBESERVE_URL") or "http://127.0.0.1:8080"
        ).rstrip("/")
        self.credentials = credentials or Credentials()
        self.upload_timeout = upload_timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        creds = self.credentials
        if creds.api_key:
            return {"Authorization": f"Bearer {creds.api_key}"}
        if creds.access_token:
            return {"Authorization": f"Bearer {creds.access_token}"}
        return {}

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """Call the API; decode JSON; raise APIError on an error status. A 401 with a refresh
        token available triggers one refresh and one retry."""
        response = self._send(method, path, auth, kwargs)
        if response.status_code == 401 and auth and self.credentials.refresh_token:
            if self._refresh():
                response = self._send(method, path, auth, kwargs)
        return _decode(response)

    def _object(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        """`request()` for the endpoints whose answer is a JSON object."""
        return cast(dict[str, Any], self.request(method, path, auth=auth, **kwargs))

    def _send(self, method: str, path: str, auth: bool, kwargs: dict[str, Any]) -> httpx.Response:
        headers = {**(self._headers() if auth else {}), **kwargs.pop("headers", {})}
        try:
            return self._http.request(method, f"{API}{path}", headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise APIError(0, "timeout", f"{self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise APIError(
                0, "unreachable", f"cannot reach KubeServe at {self.base_url}: {exc}"
            ) from exc

    def _refresh(self) -> bool:
        try:
            tokens = _decode(
                self._http.post(
                    f"{API}/auth/refresh", json={"refresh_token": self.credentials.refresh_token}
                )
            )
        except APIError:
            return False
        self._store_tokens(tokens)
        return True

    def _store_tokens(self, tokens: dict[str, Any]) -> None:
        self.credentials.access_token = tokens["access_token"]
        self.credentials.refresh_token = tokens.get("refresh_token")
        if self.credentials.on_refresh:
            self.credentials.on_refresh(self.credentials)

    # -- auth --------------------------------------------------------------------------------
    def register(self, email: str, password: str) -> dict[str, Any]:
        return self._object(
            "POST", "/auth/register", auth=False, json={"email": email, "password": password}
        )

    def login(self, email: str, password: str) -> dict[str, Any]:
        tokens = self._object(
            "POST", "/auth/login", auth=False, json={"email": email, "password": password}
        )
        self._store_tokens(tokens)
        return tokens

    def logout(self) -> None:
        if self.credentials.refresh_token:
            self.request(
                "POST", "/auth/logout", json={"refresh_token": self.credentials.refresh_token}
            )
        self.credentials.access_token = self.credentials.refresh_token = None

    def me(self) -> dict[str, Any]:
        return self._object("GET", "/auth/me")

    def create_api_key(
        self, name: str, deployment_ids: list[str] | None = None, expires_in_days: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if deployment_ids:
            body["deployment_ids"] = deployment_ids
        if expires_in_days:
            body["expires_in_days"] = expires_in_days
        return self._object("POST", "/auth/api-keys", json=body)

    def list_api_keys(self) -> list[dict[str, Any]]:
        return _items(self.request("GET", "/auth/api-keys"))

    def revoke_api_key(self, key_id: str) -> None:
        self.request("DELETE", f"/auth/api-keys/{key_id}")

    # -- models and versions -----------------------------------------------------------------
    def create_model(
        self, name: str, framework: str = "sklearn", description: str = ""
    ) -> dict[str, Any]:
        return self._object(
            "POST",
            "/models",
            json={"name": name, "framework": framework, "description": description},
        )

    def list_models(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return _items(self.request("GET", "/models", params={"limit": limit, "offset": offset}))

    def iter_models(self) -> Iterator[dict[str, Any]]:
        offset = 0
        while page := self.list_models(limit=100, offset=offset):
            yield from page
            offset += len(page)
            if len(page) < 100:
                return

    def get_model(self, model_id: str) -> dict[str, Any]:
        return self._object("GET", f"/models/{model_id}")

    def find_model(self, name_or_id: str) -> dict[str, Any]:
        """A model by id, or by its name among the caller's models."""
        for model in self.iter_models():
            if name_or_id in (model["id"], model["name"]):
                return model
        raise APIError(404, "not_found", f"no model named {name_or_id!r}")

    def delete_model(self, model_id: str) -> None:
        self.request("DELETE", f"/models/{model_id}")

    def push(
        self,
        model_id: str,
        model_path: str | Path,
        requirements_path: str | Path | None = None,
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload a version: the model file streams from disk (never read whole into memory)."""
        model_path = Path(model_path)
        total = model_path.stat().st_size
        with model_path.open("rb") as raw:
            files: dict[str, Any] = {
                "model": (
                    model_path.name,
                    _ProgressReader(raw, total, progress),
                    "application/octet-stream",
                )
            }
            if requirements_path is not None:
                files["requirements"] = (
                    "requirements.txt",
                    Path(requirements_path).read_bytes(),
                    "text/plain",
                )
            return self._object(
                "POST", f"/models/{model_id}/versions", files=files, timeout=self.upload_timeout
            )

    def list_versions(
        self, model_id: str, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        return _items(
            self.request(
                "GET", f"/models/{model_id}/versions", params={"limit": limit, "offset": offset}
            )
        )

    def get_version(self, model_id: str, ref: str) -> dict[str, Any]:
        return self._object("GET", f"/models/{model_id}/versions/{ref}")

    def wait_for_version(
        self,
        model_id: str,
        ref: str,
        *,
        timeout: float = 600,
        on_status: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        return _wait(lambda: self.get_version(model_id, ref), TERMINAL_VERSION, timeout, on_status)

    # -- deployments -------------------------------------------------------------------------
    def deploy(self, version_id: str, replicas: int = 1, name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"version_id": version_id, "replicas": replicas}
        if name:
            body["name"] = name
        return self._object("POST", "/deployments", json=body)

    def list_deployments(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return _items(
            self.request("GET", "/deployments", params={"limit": limit, "offset": offset})
        )

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        return self._object("GET", f"/deployments/{deployment_id}")

    def wait_for_deployment(
        self,
        deployment_id: str,
        *,
        timeout: float = 300,
        on_status: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        return _wait(
            lambda: self.get_deployment(deployment_id), TERMINAL_DEPLOYMENT, timeout, on_status
        )

    def scale(self, deployment_id: str, replicas: int) -> dict[str, Any]:
        return self._object("PATCH", f"/deployments/{deployment_id}", json={"replicas": replicas})

    def update(self, deployment_id: str, *, version_id: str) -> dict[str, Any]:
        """Move a deployment to another Ready version of the same model (a new revision)."""
        return self._object(
            "PATCH", f"/deployments/{deployment_id}", json={"version_id": version_id}
        )

    def rollback(self, deployment_id: str, revision: int | None = None) -> dict[str, Any]:
        body = {"revision": revision} if revision is not None else {}
        return self._object("POST", f"/deployments/{deployment_id}/rollback", json=body)

    def delete_deployment(self, deployment_id: str) -> None:
        self.request("DELETE", f"/deployments/{deployment_id}")

    # -- predictions -------------------------------------------------------------------------
    def predict(self, deployment_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Simple JSON: `{"instances": [[...]]}` or `{"records": [{...}]}`."""
        return self._object("POST", f"/predict/{deployment_id}", json=payload)

    def infer(self, deployment_id: str, model_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Open Inference Protocol V2."""
        return self._object(
            "POST", f"/predict/{deployment_id}/v2/models/{model_name}/infer", json=payload
        )


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        if response.is_error:
            raise APIError(response.status_code, "error", response.reason_phrase)
        return None
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    if response.is_error:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise APIError(
                response.status_code,
                str(error.get("code", "error")),
                str(error.get("message", "")),
                body,
            )
        if isinstance(error, str):  # the model runtime's OIP error shape
            raise APIError(response.status_code, "prediction_error", error, body)
        raise APIError(
            response.status_code, "error", response.text[:500] or response.reason_phrase, body
        )
    return body


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and "items" in body:
        return list(body["items"])
    return list(body or [])


def _wait(
    fetch: Callable[[], dict[str, Any]],
    terminal: set[str],
    timeout: float,
    on_status: Callable[[str], None] | None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    delay = 0.2
    while True:
        current = fetch()
        status = current.get("status")
        if status != last and on_status:
            on_status(str(status))
        last = status
        if status in terminal:
            return current
        if time.monotonic() > deadline:
            raise TimeoutExpired(f"still {status} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
