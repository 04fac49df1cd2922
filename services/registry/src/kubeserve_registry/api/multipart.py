"""Streaming multipart/form-data reader: parts are yielded as their headers arrive and their
bytes are pulled from the request body only as the consumer reads them, so a model file flows
into the artifact store without ever being held whole in memory (python-multipart's push parser
driven from `request.stream()`)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kubeserve_common.errors import BadRequest, KubeServeError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 8
_MAX_HEADER_SIZE = 8 * 1024


class UnsupportedMediaType(KubeServeError):
    code, http_status = "unsupported_media_type", 415


def boundary_of(content_type: str | None) -> bytes:
    media, params = parse_options_header(content_type or "")
    if media != b"multipart/form-data":
        raise UnsupportedMediaType(
            "send the upload as multipart/form-data with a 'model' file field"
        )
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise BadRequest("multipart/form-data without a valid boundary")
    return boundary


@dataclass
class StreamedPart:
    """One form part. `chunks()` reads its bytes from the shared body stream, once."""

    name: str
    filename: str | None
    content_type: str | None
    _form: MultipartStream = field(repr=False)
    _consumed: bool = field(default=False, repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("a part can be read once")
        self._consumed = True
        while True:
            kind, value = await self._form._next()
            if kind == "data":
                yield value  # type: ignore[misc]
            elif kind == "part_end":
                return
            else:
                raise BadRequest("malformed multipart body")


class MultipartStream:
    def __init__(self, content_type: str | None, body: AsyncIterator[bytes]) -> None:
        self._events: deque[tuple[str, object]] = deque()
        self._body = body
        self._ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._parser = MultipartParser(
            boundary_of(content_type),
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": lambda d, s, e: self._events.append(("data", bytes(d[s:e]))),
                "on_part_end": lambda: self._events.append(("part_end", None)),
                "on_end": lambda: self._events.append(("end", None)),
            },
            max_header_count=16,
            max_header_size=_MAX_HEADER_SIZE,
        )

    # -- parser callbacks (synchronous, called from `write`) ----------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        self._events.append(("headers", dict(self._headers)))

    # -- pulling -------------------------------------------------------------------------------
    async def _next(self) -> tuple[str, object]:
        while not self._events:
            if self._ended:
                raise BadRequest("the multipart body ended before its closing boundary")
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._ended = True
                self._parser.finalize()
                continue
            if not chunk:
                continue
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise BadRequest(f"malformed multipart body: {exc}") from None
        return self._events.popleft()

    async def parts(self) -> AsyncIterator[StreamedPart]:
        """The form's parts in order; a part not read by the consumer is skipped."""
        current: StreamedPart | None = None
        count = 0
        while True:
            if current is not None and not current._consumed:
                async for _ in current.chunks():
                    pass
            kind, value = await self._next()
            if kind == "end":
                return
            if kind == "part_end" or kind == "data":
                continue  # the tail of a part already handed out
            assert kind == "headers" and isinstance(value, dict)
            count += 1
            if count > MAX_PARTS:
                raise BadRequest(f"too many form fields (at most {MAX_PARTS})")
            current = self._make_part(value)
            yield current

    def _make_part(self, headers: dict[bytes, bytes]) -> StreamedPart:
        disposition, params = parse_options_header(headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise BadRequest("every multipart part needs Content-Disposition: form-data; name=...")
        filename = params.get(b"filename")
        content_type = headers.get(b"content-type")
        return StreamedPart(
            name=params[b"name"].decode("utf-8", "replace"),
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=content_type.decode("latin-1") if content_type else None,
            _form=self,
        )
