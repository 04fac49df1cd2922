"""`AsyncClient`: `Client`'s methods for asyncio (the same `Call`s, see `_calls.py`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

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
from kubeserve_sdk.client import (
    TERMINAL_DEPLOYMENT,
    TERMINAL_VERSION,
    Progress,
    _error,
    upload_files,
)

T = TypeVar("T")


class AsyncClient:
    """`Client`'s methods, awaitable (`logs` and `iter_models` are async iterators).
    Credentials: `credentials` or `api_key`, else `KUBESERVE_API_KEY`, else what `kubeserve
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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url, self.credentials = resolve(base_url, credentials, api_key)
        self.upload_timeout = upload_timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing ----------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """Call the API; decode JSON; raise APIError on an error status. A 401 with a refresh
        token available triggers one refresh and one retry; 503 on an idempotent call, retries
        with backoff (see `RetryPolicy`)."""
        response = await self._send(method, path, auth, kwargs)
        if response.status_code == 401 and auth and self.credentials.refresh_token:
            if await self._refresh():
                response = await self._send(method, path, auth, kwargs)
        return decode(response)

    async def _run(self, call: Call[T]) -> T:
        return call.parse(await self.request(call.method, call.path, auth=call.auth, **call.kwargs))

    async def _send(
        self, method: str, path: str, auth: bool, kwargs: dict[str, Any]
    ) -> httpx.Response:
        extra = kwargs.get("headers", {})
        attempt = 0
        while True:
            headers = {**(auth_headers(self.credentials) if auth else {}), **extra}
            args = {k: v for k, v in kwargs.items() if k != "headers"}
            try:
                response = await self._http.request(method, f"{API}{path}", headers=headers, **args)
            except httpx.ConnectError as exc:
                if not should_retry(self.retry, attempt, method, path, None):
                    raise transport_error(exc, self.base_url) from exc
                await self._sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            except httpx.TransportError as exc:
                raise transport_error(exc, self.base_url) from exc
            if not should_retry(self.retry, attempt, method, path, response.status_code):
                return response
            await self._sleep(self.retry.delay(attempt, response))
            attempt += 1

    async def _refresh(self) -> bool:
        try:
            tokens = decode(
                await self._http.post(
                    f"{API}/auth/refresh", json={"refresh_token": self.credentials.refresh_token}
                )
            )
        except (APIError, httpx.TransportError):
            return False
        store_tokens(self.credentials, tokens)
        return True

    # -- auth --------------------------------------------------------------------------------
    async def register(self, email: str, password: str) -> m.UserRead:
        return await self._run(calls.register(email, password))

    async def login(self, email: str, password: str) -> m.TokenResponse:
        tokens = await self._run(calls.login(email, password))
        store_tokens(self.credentials, tokens.to_dict())
        return tokens

    async def logout(self) -> None:
        if self.credentials.refresh_token:
            await self._run(calls.logout(self.credentials.refresh_token))
        self.credentials.access_token = self.credentials.refresh_token = None

    async def me(self) -> m.UserRead:
        return await self._run(calls.me())

    async def create_api_key(
        self,
        name: str,
        deployment_ids: Iterable[str] | None = None,
        expires_in_days: int | None = None,
        **options: Any,
    ) -> m.ApiKeyCreated:
        """`options`: further fields of the key (e.g. its rate limits), sent as given."""
        return await self._run(calls.create_api_key(name, deployment_ids, expires_in_days, options))

    async def list_api_keys(self) -> list[m.ApiKeyRead]:
        return await self._run(calls.list_api_keys())

    async def revoke_api_key(self, key_id: str) -> None:
        await self._run(calls.revoke_api_key(key_id))

    # -- models and versions -----------------------------------------------------------------
    async def create_model(
        self, name: str, framework: str = "sklearn", description: str = ""
    ) -> m.ModelRead:
        return await self._run(calls.create_model(name, framework, description))

    async def list_models(self, limit: int = 100, offset: int = 0) -> list[m.ModelRead]:
        return await self._run(calls.list_models(limit, offset))

    async def iter_models(self) -> AsyncIterator[m.ModelRead]:
        offset = 0
        while page := await self.list_models(limit=100, offset=offset):
            for model in page:
                yield model
            offset += len(page)
            if len(page) < 100:
                return

    async def get_model(self, model_id: str) -> m.ModelRead:
        return await self._run(calls.get_model(model_id))

    async def find_model(self, name_or_id: str) -> m.ModelRead:
        """A model by id, or by its name among the caller's models."""
        async for model in self.iter_models():
            if name_or_id in (str(model.id), model.name):
                return model
        raise APIError(404, "not_found", f"no model named {name_or_id!r}")

    async def delete_model(self, model_id: str) -> None:
        await self._run(calls.delete_model(model_id))

    async def push(
        self,
        model_id: str,
        model_path: str | Path,
        requirements_path: str | Path | None = None,
        *,
        progress: Progress | None = None,
    ) -> m.VersionRead:
        """Upload a version: the model file streams from disk (never read whole into memory)."""
        model_path = Path(model_path)
        # httpx reads the file in chunks as it sends the multipart body; local disk reads.
        with model_path.open("rb") as raw:  # noqa: ASYNC230
            files = upload_files(model_path, requirements_path, raw, progress)
            body = await self.request(
                "POST", f"/models/{model_id}/versions", files=files, timeout=self.upload_timeout
            )
        return m.VersionRead.model_validate(body)

    async def list_versions(
        self, model_id: str, limit: int = 100, offset: int = 0
    ) -> list[m.VersionRead]:
        return await self._run(calls.list_versions(model_id, limit, offset))

    async def get_version(self, model_id: str, ref: str) -> m.VersionRead:
        return await self._run(calls.get_version(model_id, ref))

    async def get_build(self, version_id: str) -> m.BuildRead:
        return await self._run(calls.get_build(version_id))

    async def wait_for_version(
        self,
        model_id: str,
        ref: str,
        *,
        timeout: float = 600,  # noqa: ASYNC109 (the same signature as Client's)
        on_status: Callable[[str], None] | None = None,
    ) -> m.VersionRead:
        return await self._wait(
            lambda: self.get_version(model_id, ref), TERMINAL_VERSION, timeout, on_status
        )

    # -- deployments -------------------------------------------------------------------------
    async def deploy(
        self,
        version_id: str,
        replicas: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> m.DeploymentRead:
        """`replicas`: a fixed count (the server's default: 1); `options`: further fields,
        e.g. `autoscaling={"min_replicas": 0, "max_replicas": 3, "target_concurrency": 4}`."""
        return await self._run(calls.deploy(version_id, replicas, name, options))

    async def list_deployments(self, limit: int = 100, offset: int = 0) -> list[m.DeploymentRead]:
        return await self._run(calls.list_deployments(limit, offset))

    async def get_deployment(self, deployment_id: str) -> m.DeploymentRead:
        return await self._run(calls.get_deployment(deployment_id))

    async def wait_for_deployment(
        self,
        deployment_id: str,
        *,
        timeout: float = 300,  # noqa: ASYNC109
        on_status: Callable[[str], None] | None = None,
    ) -> m.DeploymentRead:
        return await self._wait(
            lambda: self.get_deployment(deployment_id), TERMINAL_DEPLOYMENT, timeout, on_status
        )

    async def scale(self, deployment_id: str, replicas: int) -> m.DeploymentRead:
        return await self._run(calls.update_deployment(deployment_id, {"replicas": replicas}))

    async def autoscale(self, deployment_id: str, **settings: Any) -> m.DeploymentRead:
        """Turn autoscaling on or change it: `min_replicas`, `max_replicas`,
        `target_concurrency`, `scale_to_zero_after_s` (`scale()` turns it off)."""
        return await self._run(calls.update_deployment(deployment_id, {"autoscaling": settings}))

    async def update(self, deployment_id: str, *, version_id: str) -> m.DeploymentRead:
        """Move a deployment to another Ready version of the same model (a new revision)."""
        return await self._run(calls.update_deployment(deployment_id, {"version_id": version_id}))

    async def rollback(self, deployment_id: str, revision: int | None = None) -> m.DeploymentRead:
        return await self._run(calls.rollback(deployment_id, revision))

    async def delete_deployment(self, deployment_id: str) -> m.DeploymentRead | None:
        return await self._run(calls.delete_deployment(deployment_id))

    async def usage(self) -> dict[str, Any]:
        """Replicas, CPU and memory in use against the quota (`GET /api/v1/usage`)."""
        return await self._run(calls.usage())

    async def logs(
        self,
        deployment_id: str,
        *,
        follow: bool = False,
        replica: int | None = None,
        since: str | None = None,
        tail: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """The replicas' log lines as they come (with `follow`, until you stop iterating)."""
        path, params = calls.logs_request(deployment_id, follow, replica, since, tail)
        headers = {**auth_headers(self.credentials), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self._http.timeout.connect, read=None if follow else 60.0)
        try:
            async with self._http.stream(
                "GET", f"{API}{path}", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.is_error:
                    await response.aread()
                    raise _error(response)
                parser = SSEParser()
                async for line in response.aiter_lines():
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
    async def predict(self, deployment_id: str, data: Any, *, as_numpy: bool = False) -> Any:
        """Simple JSON: a dict body (`{"instances": [[...]]}` or `{"records": [{...}]}`), a
        list of rows, a numpy array or a pandas DataFrame. `as_numpy`: the predictions as a
        numpy array instead of the response body."""
        body = await self._run(calls.predict(deployment_id, data))
        return decode_predictions(body) if as_numpy else body

    async def infer(
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
        body = await self._run(calls.infer(deployment_id, model_name, inputs, input_name))
        return decode_outputs(body) if as_numpy else body

    # -- waiting -----------------------------------------------------------------------------
    async def _wait(
        self,
        fetch: Callable[[], Awaitable[T]],
        terminal: set[str],
        timeout: float,  # noqa: ASYNC109
        on_status: Callable[[str], None] | None,
    ) -> T:
        deadline = time.monotonic() + timeout
        last = None
        delay = 0.2
        while True:
            current = await fetch()
            status = str(getattr(current, "status", ""))
            if status != last and on_status:
                on_status(status)
            last = status
            if status in terminal:
                return current
            if time.monotonic() > deadline:
                raise TimeoutExpired(f"still {status} after {timeout:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
