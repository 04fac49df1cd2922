"""`Client`: the synchronous client of the gateway's `/api/v1` (httpx). `AsyncClient` (aio.py)
has the same methods, awaitable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from kubeserve_sdk import _calls as calls
from kubeserve_sdk import models as m
from kubeserve_sdk._calls import LogEntry, SSEParser
from kubeserve_sdk._transport import (
    API,
    APIError,
    Call,
    Credentials,
    RetryPolicy,
    TimeoutExpired,
    auth_headers,
    decode,
    error_of,
    resolve,
    should_retry,
    store_tokens,
    transport_error,
)
from kubeserve_sdk.arrays import decode_outputs, decode_predictions

T = TypeVar("T")
TERMINAL_VERSION = {"Ready", "Failed"}
TERMINAL_DEPLOYMENT = {"Running", "Failed", "Stopped"}
Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


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


def upload_files(
    model_path: Path, requirements_path: str | Path | None, raw: IO[bytes], progress: Any
) -> dict[str, Any]:
    total = model_path.stat().st_size
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
    return files


class Client:
    """Credentials: `credentials` or `api_key`, else `KUBESERVE_API_KEY`, else what `kubeserve
    login` saved; the URL: `base_url`, else `KUBESERVE_URL`, else the saved one, else
    http://127.0.0.1:8080. Idempotent calls (reads, deletes, predictions) are retried on 503
    honouring Retry-After (`retry=RetryPolicy(retries=0)` turns that off)."""

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        upload_timeout: float = 3600.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url, self.credentials = resolve(base_url, credentials, api_key)
        self.upload_timeout = upload_timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """Call the API; decode JSON; raise APIError on an error status. A 401 with a refresh
        token available triggers one refresh and one retry; 503 on an idempotent call, retries
        with backoff (see `RetryPolicy`)."""
        response = self._send(method, path, auth, kwargs)
        if response.status_code == 401 and auth and self.credentials.refresh_token:
            if self._refresh():
                response = self._send(method, path, auth, kwargs)
        return decode(response)

    def _run(self, call: Call[T]) -> T:
        return call.parse(self.request(call.method, call.path, auth=call.auth, **call.kwargs))

    def _send(self, method: str, path: str, auth: bool, kwargs: dict[str, Any]) -> httpx.Response:
        extra = kwargs.get("headers", {})
        attempt = 0
        while True:
            headers = {**(auth_headers(self.credentials) if auth else {}), **extra}
            args = {k: v for k, v in kwargs.items() if k != "headers"}
            try:
                response = self._http.request(method, f"{API}{path}", headers=headers, **args)
            except httpx.ConnectError as exc:
                if not should_retry(self.retry, attempt, method, path, None):
                    raise transport_error(exc, self.base_url) from exc
                self._sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            except httpx.TransportError as exc:
                raise transport_error(exc, self.base_url) from exc
            if not should_retry(self.retry, attempt, method, path, response.status_code):
                return response
            self._sleep(self.retry.delay(attempt, response))
            attempt += 1

    def _refresh(self) -> bool:
        try:
            tokens = decode(
                self._http.post(
                    f"{API}/auth/refresh", json={"refresh_token": self.credentials.refresh_token}
                )
            )
        except (APIError, httpx.TransportError):
            return False
        store_tokens(self.credentials, tokens)
        return True

    # -- auth --------------------------------------------------------------------------------
    def register(self, email: str, password: str) -> m.UserRead:
        return self._run(calls.register(email, password))

    def login(self, email: str, password: str) -> m.TokenResponse:
        tokens = self._run(calls.login(email, password))
        store_tokens(self.credentials, tokens.to_dict())
        return tokens

    def logout(self) -> None:
        if self.credentials.refresh_token:
            self._run(calls.logout(self.credentials.refresh_token))
        self.credentials.access_token = self.credentials.refresh_token = None

    def me(self) -> m.UserRead:
        return self._run(calls.me())

    def create_api_key(
        self,
        name: str,
        deployment_ids: Iterable[str] | None = None,
        expires_in_days: int | None = None,
        **options: Any,
    ) -> m.ApiKeyCreated:
        """`options`: further fields of the key (e.g. its rate limits), sent as given."""
        return self._run(calls.create_api_key(name, deployment_ids, expires_in_days, options))

    def list_api_keys(self) -> list[m.ApiKeyRead]:
        return self._run(calls.list_api_keys())

    def revoke_api_key(self, key_id: str) -> None:
        self._run(calls.revoke_api_key(key_id))

    # -- models and versions -----------------------------------------------------------------
    def create_model(
        self, name: str, framework: str = "sklearn", description: str = ""
    ) -> m.ModelRead:
        return self._run(calls.create_model(name, framework, description))

    def list_models(self, limit: int = 100, offset: int = 0) -> list[m.ModelRead]:
        return self._run(calls.list_models(limit, offset))

    def iter_models(self) -> Iterator[m.ModelRead]:
        offset = 0
        while page := self.list_models(limit=100, offset=offset):
            yield from page
            offset += len(page)
            if len(page) < 100:
                return

    def get_model(self, model_id: str) -> m.ModelRead:
        return self._run(calls.get_model(model_id))

    def find_model(self, name_or_id: str) -> m.ModelRead:
        """A model by id, or by its name among the caller's models."""
        for model in self.iter_models():
            if name_or_id in (str(model.id), model.name):
                return model
        raise APIError(404, "not_found", f"no model named {name_or_id!r}")

    def delete_model(self, model_id: str) -> None:
        self._run(calls.delete_model(model_id))

    def push(
        self,
        model_id: str,
        model_path: str | Path,
        requirements_path: str | Path | None = None,
        *,
        progress: Progress | None = None,
    ) -> m.VersionRead:
        """Upload a version: the model file streams from disk (never read whole into memory)."""
        model_path = Path(model_path)
        with model_path.open("rb") as raw:
            files = upload_files(model_path, requirements_path, raw, progress)
            body = self.request(
                "POST", f"/models/{model_id}/versions", files=files, timeout=self.upload_timeout
            )
        return m.VersionRead.model_validate(body)

    def list_versions(
        self, model_id: str, limit: int = 100, offset: int = 0
    ) -> list[m.VersionRead]:
        return self._run(calls.list_versions(model_id, limit, offset))

    def get_version(self, model_id: str, ref: str) -> m.VersionRead:
        return self._run(calls.get_version(model_id, ref))

    def get_build(self, version_id: str) -> m.BuildRead:
        return self._run(calls.get_build(version_id))

    def wait_for_version(
        self,
        model_id: str,
        ref: str,
        *,
        timeout: float = 600,
        on_status: Callable[[str], None] | None = None,
    ) -> m.VersionRead:
        return self._wait(
            lambda: self.get_version(model_id, ref), TERMINAL_VERSION, timeout, on_status
        )

    # -- deployments -------------------------------------------------------------------------
    def deploy(
        self,
        version_id: str,
        replicas: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> m.DeploymentRead:
        """`replicas`: a fixed count (the server's default: 1); `options`: further fields,
        e.g. `autoscaling={"min_replicas": 0, "max_replicas": 3, "target_concurrency": 4}`."""
        return self._run(calls.deploy(version_id, replicas, name, options))

    def list_deployments(self, limit: int = 100, offset: int = 0) -> list[m.DeploymentRead]:
        return self._run(calls.list_deployments(limit, offset))

    def get_deployment(self, deployment_id: str) -> m.DeploymentRead:
        return self._run(calls.get_deployment(deployment_id))

    def wait_for_deployment(
        self,
        deployment_id: str,
        *,
        timeout: float = 300,
        on_status: Callable[[str], None] | None = None,
    ) -> m.DeploymentRead:
        return self._wait(
            lambda: self.get_deployment(deployment_id), TERMINAL_DEPLOYMENT, timeout, on_status
        )

    def scale(self, deployment_id: str, replicas: int) -> m.DeploymentRead:
        return self._run(calls.update_deployment(deployment_id, {"replicas": replicas}))

    def autoscale(self, deployment_id: str, **settings: Any) -> m.DeploymentRead:
        """Turn autoscaling on or change it: `min_replicas`, `max_replicas`,
        `target_concurrency`, `scale_to_zero_after_s` (`scale()` turns it off)."""
        return self._run(calls.update_deployment(deployment_id, {"autoscaling": settings}))

    def update(self, deployment_id: str, *, version_id: str) -> m.DeploymentRead:
        """Move a deployment to another Ready version of the same model (a new revision)."""
        return self._run(calls.update_deployment(deployment_id, {"version_id": version_id}))

    def rollback(self, deployment_id: str, revision: int | None = None) -> m.DeploymentRead:
        return self._run(calls.rollback(deployment_id, revision))

    def delete_deployment(self, deployment_id: str) -> m.DeploymentRead | None:
        return self._run(calls.delete_deployment(deployment_id))

    def usage(self) -> dict[str, Any]:
        """Replicas, CPU and memory in use against the quota (`GET /api/v1/usage`)."""
        return self._run(calls.usage())

    def logs(
        self,
        deployment_id: str,
        *,
        follow: bool = False,
        replica: int | None = None,
        since: str | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:
        """The replicas' log lines as they come (with `follow`, until you stop iterating)."""
        path, params = calls.logs_request(deployment_id, follow, replica, since, tail)
        headers = {**auth_headers(self.credentials), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self._http.timeout.connect, read=None if follow else 60.0)
        try:
            with self._http.stream(
                "GET", f"{API}{path}", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise _error(response)
                parser = SSEParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is None:
                        continue
                    kind, data = event
                    if kind == "log":
                        yield LogEntry(int(data["replica"]), str(data["line"]), data.get("pod"))
                    elif kind == "error":
                        raise error_of(500, data, "", "log stream failed")
                    elif kind == "end":
                        return
        except httpx.TransportError as exc:
            raise transport_error(exc, self.base_url) from exc

    # -- predictions -------------------------------------------------------------------------
    def predict(self, deployment_id: str, data: Any, *, as_numpy: bool = False) -> Any:
        """Simple JSON: a dict body (`{"instances": [[...]]}` or `{"records": [{...}]}`), a
        list of rows, a numpy array or a pandas DataFrame. `as_numpy`: the predictions as a
        numpy array instead of the response body."""
        body = self._run(calls.predict(deployment_id, data))
        return decode_predictions(body) if as_numpy else body

    def infer(
        self,
        deployment_id: str,
        model_name: str,
        inputs: Any,
        *,
        input_name: str = "input-0",
        as_numpy: bool = False,
    ) -> Any:
        """Open Inference Protocol V2: a V2 request dict, a numpy array (one tensor named
        `input_name`), `{name: array}` or a DataFrame. `as_numpy`: `{output name: array}`."""
        body = self._run(calls.infer(deployment_id, model_name, inputs, input_name))
        return decode_outputs(body) if as_numpy else body

    # -- waiting -----------------------------------------------------------------------------
    def _wait(
        self,
        fetch: Callable[[], T],
        terminal: set[str],
        timeout: float,
        on_status: Callable[[str], None] | None,
    ) -> T:
        deadline = time.monotonic() + timeout
        last = None
        delay = 0.2
        while True:
            current = fetch()
            status = str(getattr(current, "status", ""))
            if status != last and on_status:
                on_status(status)
            last = status
            if status in terminal:
                return current
            if time.monotonic() > deadline:
                raise TimeoutExpired(f"still {status} after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def _error(response: httpx.Response) -> APIError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_of(response.status_code, body, response.text, response.reason_phrase)
