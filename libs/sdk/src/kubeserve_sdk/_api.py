"""The SDK's methods, once, for `Client` and `AsyncClient`: retries and token refresh, every
API call of `_calls.py` with its public signature, uploads and waiting. Each is an `operation`
(see `_engine.py`), so only the I/O differs between the two clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import httpx

from kubeserve_sdk import _calls as calls
from kubeserve_sdk import models as m
from kubeserve_sdk._calls import LogEntry, SSEParser
from kubeserve_sdk._engine import Flow, Pause, Send, operation
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
Sleep = TypeVar("Sleep")
TERMINAL_VERSION = {"Ready", "Failed"}
TERMINAL_DEPLOYMENT = {"Running", "Failed", "Stopped"}
PAGE = 100
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


class LogStream:
    """The logs route's server-sent events, fed line by line: `feed` answers a `LogEntry` or
    None, raises the stream's error event as `APIError`, and sets `done` at its end event."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.done = False

    def feed(self, line: str) -> LogEntry | None:
        event = self.parser.feed(line)
        if event is None:
            return None
        kind, data = event
        if kind == "log":
            return LogEntry(int(data["replica"]), str(data["line"]), data.get("pod"))
        if kind == "error":
            raise error_of(500, data, "", "log stream failed")
        if kind == "end":
            self.done = True
        return None


def stream_error(response: httpx.Response) -> APIError:
    """The error answer of a streamed request (read in full by the caller)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_of(response.status_code, body, response.text, response.reason_phrase)


class Operations(Generic[Sleep]):
    """What both clients do; they add the transport (`_open`, `_drive`, `_http`) and streams."""

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        upload_timeout: float = 3600.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """Credentials: `credentials` or `api_key`, else `KUBESERVE_API_KEY`, else what
        `kubeserve login` saved; the URL: `base_url`, else `KUBESERVE_URL`, else the saved one,
        else http://127.0.0.1:8080. Idempotent calls (reads, deletes, predictions) are retried
        on 503 honouring Retry-After (`retry=RetryPolicy(retries=0)` turns that off); `sleep`
        waits before a retry (default `time.sleep`, or `asyncio.sleep` for `AsyncClient`)."""
        self.base_url, self.credentials = resolve(base_url, credentials, api_key)
        self.upload_timeout = upload_timeout
        self.retry = retry or RetryPolicy()
        self._open(timeout, sleep)

    def _open(self, timeout: float, sleep: Sleep | None) -> None:
        """Make the HTTP client (the transport's part of `__init__`)."""
        raise NotImplementedError

    # -- plumbing ----------------------------------------------------------------------------
    @operation
    def request(self, /, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Flow[Any]:
        """Call the API; decode JSON; raise APIError on an error status. A 401 with a refresh
        token available triggers one refresh and one retry; 503 on an idempotent call, retries
        with backoff (see `RetryPolicy`)."""
        return (yield from self._request(method, path, auth, kwargs))

    def _request(self, method: str, path: str, auth: bool, kwargs: dict[str, Any]) -> Flow[Any]:
        response = yield from self._send(method, path, auth, kwargs)
        if response.status_code == 401 and auth and self.credentials.refresh_token:
            if (yield from self._refresh()):
                response = yield from self._send(method, path, auth, kwargs)
        return decode(response)

    def _run(self, call: Call[T]) -> Flow[T]:
        body = yield from self._request(call.method, call.path, call.auth, call.kwargs)
        return call.parse(body)

    def _send(
        self, method: str, path: str, auth: bool, kwargs: dict[str, Any]
    ) -> Flow[httpx.Response]:
        extra = kwargs.get("headers", {})
        args = {k: v for k, v in kwargs.items() if k != "headers"}
        attempt = 0
        while True:
            headers = {**(auth_headers(self.credentials) if auth else {}), **extra}
            try:
                response = yield Send(method, f"{API}{path}", {"headers": headers, **args})
            except httpx.ConnectError as exc:
                if not should_retry(self.retry, attempt, method, path, None):
                    raise transport_error(exc, self.base_url) from exc
                yield Pause(self.retry.delay(attempt, None))
                attempt += 1
                continue
            except httpx.TransportError as exc:
                raise transport_error(exc, self.base_url) from exc
            if not should_retry(self.retry, attempt, method, path, response.status_code):
                return response  # type: ignore[no-any-return]
            yield Pause(self.retry.delay(attempt, response))
            attempt += 1

    def _refresh(self) -> Flow[bool]:
        body = {"refresh_token": self.credentials.refresh_token}
        try:
            tokens = decode((yield Send("POST", f"{API}/auth/refresh", {"json": body})))
        except (APIError, httpx.TransportError):
            return False
        store_tokens(self.credentials, tokens)
        return True

    def _logs_request(
        self,
        deployment_id: str,
        follow: bool,
        replica: int | None,
        since: str | None,
        tail: int | None,
        connect_timeout: float | None,
    ) -> tuple[str, dict[str, Any]]:
        """The URL and httpx arguments of a logs stream (no read timeout while following)."""
        path, params = calls.logs_request(deployment_id, follow, replica, since, tail)
        headers = {**auth_headers(self.credentials), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(connect_timeout, read=None if follow else 60.0)
        return f"{API}{path}", {"params": params, "headers": headers, "timeout": timeout}

    # -- auth --------------------------------------------------------------------------------
    @operation
    def register(self, email: str, password: str) -> Flow[m.UserRead]:
        return (yield from self._run(calls.register(email, password)))

    @operation
    def login(self, email: str, password: str) -> Flow[m.TokenResponse]:
        tokens = yield from self._run(calls.login(email, password))
        store_tokens(self.credentials, tokens.to_dict())
        return tokens

    @operation
    def logout(self) -> Flow[None]:
        if self.credentials.refresh_token:
            yield from self._run(calls.logout(self.credentials.refresh_token))
        self.credentials.access_token = self.credentials.refresh_token = None

    @operation
    def me(self) -> Flow[m.UserRead]:
        return (yield from self._run(calls.me()))

    @operation
    def create_api_key(
        self,
        /,
        name: str,
        deployment_ids: Iterable[str] | None = None,
        expires_in_days: int | None = None,
        **options: Any,
    ) -> Flow[m.ApiKeyCreated]:
        """`options`: further fields of the key (e.g. its rate limits), sent as given."""
        call = calls.create_api_key(name, deployment_ids, expires_in_days, options)
        return (yield from self._run(call))

    @operation
    def list_api_keys(self) -> Flow[list[m.ApiKeyRead]]:
        return (yield from self._run(calls.list_api_keys()))

    @operation
    def revoke_api_key(self, key_id: str) -> Flow[None]:
        yield from self._run(calls.revoke_api_key(key_id))

    # -- models and versions -----------------------------------------------------------------
    @operation
    def create_model(
        self, name: str, framework: str = "sklearn", description: str = ""
    ) -> Flow[m.ModelRead]:
        return (yield from self._run(calls.create_model(name, framework, description)))

    @operation
    def list_models(self, limit: int = PAGE, offset: int = 0) -> Flow[list[m.ModelRead]]:
        return (yield from self._run(calls.list_models(limit, offset)))

    @operation
    def get_model(self, model_id: str) -> Flow[m.ModelRead]:
        return (yield from self._run(calls.get_model(model_id)))

    @operation
    def find_model(self, name_or_id: str) -> Flow[m.ModelRead]:
        """A model by id, or by its name among the caller's models."""
        offset = 0
        while page := (yield from self._run(calls.list_models(PAGE, offset))):
            for model in page:
                if name_or_id in (str(model.id), model.name):
                    return model
            if len(page) < PAGE:
                break
            offset += len(page)
        raise APIError(404, "not_found", f"no model named {name_or_id!r}")

    @operation
    def delete_model(self, model_id: str) -> Flow[None]:
        yield from self._run(calls.delete_model(model_id))

    @operation
    def push(
        self,
        model_id: str,
        model_path: str | Path,
        requirements_path: str | Path | None = None,
        *,
        progress: Progress | None = None,
    ) -> Flow[m.VersionRead]:
        """Upload a version: the model file streams from disk (never read whole into memory)."""
        model_path = Path(model_path)
        with model_path.open("rb") as raw:
            files = upload_files(model_path, requirements_path, raw, progress)
            kwargs = {"files": files, "timeout": self.upload_timeout}
            path = f"/models/{model_id}/versions"
            call = Call("POST", path, m.VersionRead.model_validate, kwargs)
            return (yield from self._run(call))

    @operation
    def list_versions(
        self, model_id: str, limit: int = PAGE, offset: int = 0
    ) -> Flow[list[m.VersionRead]]:
        return (yield from self._run(calls.list_versions(model_id, limit, offset)))

    @operation
    def get_version(self, model_id: str, ref: str) -> Flow[m.VersionRead]:
        return (yield from self._run(calls.get_version(model_id, ref)))

    @operation
    def get_build(self, version_id: str) -> Flow[m.BuildRead]:
        return (yield from self._run(calls.get_build(version_id)))

    @operation
    def wait_for_version(
        self,
        model_id: str,
        ref: str,
        *,
        timeout: float = 600,
        on_status: Callable[[str], None] | None = None,
    ) -> Flow[m.VersionRead]:
        call = calls.get_version(model_id, ref)
        return (yield from self._wait(call, TERMINAL_VERSION, timeout, on_status))

    # -- deployments -------------------------------------------------------------------------
    @operation
    def deploy(
        self,
        /,
        version_id: str,
        replicas: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Flow[m.DeploymentRead]:
        """`replicas`: a fixed count (the server's default: 1); `options`: further fields,
        e.g. `autoscaling={"min_replicas": 0, "max_replicas": 3, "target_concurrency": 4}`."""
        return (yield from self._run(calls.deploy(version_id, replicas, name, options)))

    @operation
    def list_deployments(self, limit: int = PAGE, offset: int = 0) -> Flow[list[m.DeploymentRead]]:
        return (yield from self._run(calls.list_deployments(limit, offset)))

    @operation
    def get_deployment(self, deployment_id: str) -> Flow[m.DeploymentRead]:
        return (yield from self._run(calls.get_deployment(deployment_id)))

    @operation
    def wait_for_deployment(
        self,
        deployment_id: str,
        *,
        timeout: float = 300,
        on_status: Callable[[str], None] | None = None,
    ) -> Flow[m.DeploymentRead]:
        call = calls.get_deployment(deployment_id)
        return (yield from self._wait(call, TERMINAL_DEPLOYMENT, timeout, on_status))

    @operation
    def scale(self, deployment_id: str, replicas: int) -> Flow[m.DeploymentRead]:
        body = {"replicas": replicas}
        return (yield from self._run(calls.update_deployment(deployment_id, body)))

    @operation
    def autoscale(self, /, deployment_id: str, **settings: Any) -> Flow[m.DeploymentRead]:
        """Turn autoscaling on or change it: `min_replicas`, `max_replicas`,
        `target_concurrency`, `scale_to_zero_after_s` (`scale()` turns it off)."""
        body = {"autoscaling": settings}
        return (yield from self._run(calls.update_deployment(deployment_id, body)))

    @operation
    def update(self, deployment_id: str, *, version_id: str) -> Flow[m.DeploymentRead]:
        """Move a deployment to another Ready version of the same model (a new revision)."""
        body = {"version_id": version_id}
        return (yield from self._run(calls.update_deployment(deployment_id, body)))

    @operation
    def rollback(self, deployment_id: str, revision: int | None = None) -> Flow[m.DeploymentRead]:
        return (yield from self._run(calls.rollback(deployment_id, revision)))

    @operation
    def delete_deployment(self, deployment_id: str) -> Flow[m.DeploymentRead | None]:
        return (yield from self._run(calls.delete_deployment(deployment_id)))

    @operation
    def usage(self) -> Flow[dict[str, Any]]:
        """Replicas, CPU and memory in use against the quota (`GET /api/v1/usage`)."""
        return (yield from self._run(calls.usage()))

    # -- predictions -------------------------------------------------------------------------
    @operation
    def predict(self, deployment_id: str, data: Any, *, as_numpy: bool = False) -> Flow[Any]:
        """Simple JSON: a dict body (`{"instances": [[...]]}` or `{"records": [{...}]}`), a
        list of rows, a numpy array or a pandas DataFrame. `as_numpy`: the predictions as a
        numpy array instead of the response body."""
        body = yield from self._run(calls.predict(deployment_id, data))
        return decode_predictions(body) if as_numpy else body

    @operation
    def infer(
        self,
        deployment_id: str,
        model_name: str,
        inputs: Any,
        *,
        input_name: str = "input-0",
        as_numpy: bool = False,
    ) -> Flow[Any]:
        """Open Inference Protocol V2: a V2 request dict, a numpy array (one tensor named
        `input_name`), `{name: array}` or a DataFrame. `as_numpy`: `{output name: array}`."""
        body = yield from self._run(calls.infer(deployment_id, model_name, inputs, input_name))
        return decode_outputs(body) if as_numpy else body

    # -- waiting -----------------------------------------------------------------------------
    def _wait(
        self,
        call: Call[T],
        terminal: set[str],
        timeout: float,
        on_status: Callable[[str], None] | None,
    ) -> Flow[T]:
        deadline = time.monotonic() + timeout
        last = None
        delay = 0.2
        while True:
            current = yield from self._run(call)
            status = str(getattr(current, "status", ""))
            if status != last and on_status:
                on_status(status)
            last = status
            if status in terminal:
                return current
            if time.monotonic() > deadline:
                raise TimeoutExpired(f"still {status} after {timeout:.0f}s")
            yield Pause(delay, retry=False)
            delay = min(delay * 1.5, 2.0)
