"""`GET /deployments/{id}/logs`: a deployment's replica logs, streamed.

Two formats, chosen by `Accept`:
- `text/plain` (default): one log line per line; when several replicas are shown each line
  starts with `[replica N] ` (like `kubectl logs --prefix`).
- `text/event-stream` (SSE, what `kubeserve logs --follow` and the dashboard use): one `log`
  event per line whose data is `{"replica": N, "line": "...", "pod": ...}`, a `: keep-alive`
  comment every 15 idle seconds (so proxies and the gateway's read timeout keep the stream
  open), and an `error` event if the source fails mid-stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from kubeserve_common.errors import KubeServeError

from kubeserve_deployer.api.deps import Caller, check_scope
from kubeserve_deployer.domain.logs import MAX_TAIL, LogLine, LogQuery, parse_since
from kubeserve_deployer.services.logs import LogService

log = logging.getLogger(__name__)
router = APIRouter(prefix="/deployments", tags=["deployments"])

LOG_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The replicas' log lines, streamed (chunked) until the end of the logs, "
        "or while `follow` is set, until the client disconnects.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


def _plain(lines: AsyncIterator[LogLine | None], prefix: bool) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for line in lines:
                if line is not None:
                    head = f"[replica {line.replica}] " if prefix else ""
                    yield f"{head}{line.text}\n".encode()
        except KubeServeError as exc:
            yield f"[error] {exc.message}\n".encode()

    return body()


def _sse(lines: AsyncIterator[LogLine | None]) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        yield b": logs\n\n"  # headers and a first byte at once: the client knows it is open
        try:
            async for line in lines:
                if line is None:
                    yield b": keep-alive\n\n"
                    continue
                data = json.dumps({"replica": line.replica, "line": line.text, "pod": line.pod})
                yield f"event: log\ndata: {data}\n\n".encode()
        except KubeServeError as exc:
            yield f"event: error\ndata: {json.dumps(exc.to_body())}\n\n".encode()
        yield b"event: end\ndata: {}\n\n"

    return body()


@router.get(
    "/{deployment_id}/logs",
    summary="Stream the replicas' logs",
    response_class=StreamingResponse,
    responses=LOG_RESPONSES,
)
async def deployment_logs(
    deployment_id: UUID,
    request: Request,
    caller: Caller,
    follow: Annotated[bool, Query(description="Keep streaming new lines.")] = False,
    replica: Annotated[
        int | None, Query(ge=0, description="Only this replica (0, 1, ...); default all.")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only lines since a duration ago (`10m`, `1h30m`) or an RFC 3339 instant.",
        ),
    ] = None,
    tail: Annotated[
        int | None, Query(ge=0, le=MAX_TAIL, description="The last N lines of each replica.")
    ] = None,
) -> StreamingResponse:
    check_scope(caller, deployment_id)
    query = LogQuery(replica=replica, since=parse_since(since), follow=follow, tail=tail)
    service: LogService = request.app.state.container.logs
    lines = await service.open(caller.user_id, deployment_id, query)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(_sse(lines), media_type="text/event-stream", headers=headers)
    return StreamingResponse(
        _plain(lines, prefix=replica is None),
        media_type="text/plain; charset=utf-8",
        headers=headers,
    )
