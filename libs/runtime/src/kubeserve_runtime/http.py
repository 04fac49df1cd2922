"""HTTP plumbing shared by the protocol endpoints: JSON responses, the error body, bounded
(and optionally compressed) request bodies.

Errors follow KServe: `{"error": "..."}` with 400 (bad input), 404 (unknown model or
version), 413 (too large), 503 (not ready) and 500 (the model raised).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

JSON = "application/json"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status, media_type=JSON)


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HttpError(413, f"request body is larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HttpError(413, f"request body is larger than {limit} bytes")
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            # Bounded decompression: a small gzip bomb must not exhaust memory.
            decomp = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
            body = decomp.decompress(body, limit + 1)
            if len(body) > limit or decomp.unconsumed_tail:
                raise HttpError(413, f"decompressed request body is larger than {limit} bytes")
        except zlib.error as exc:
            raise HttpError(400, f"request body is not valid {encoding}: {exc}") from exc
    elif encoding not in ("", "identity"):
        raise HttpError(400, f"unsupported content-encoding {encoding!r}")
    return body


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise HttpError(400, "request body is nested too deeply") from exc
