"""Decompressing, forward-only readers with a bounded buffer, for the static scan (issue 11.6).

A compressed artifact is never inflated to memory or disk: the scan reads the decompressed
bytes straight from the decompressor, at most `_CHUNK` at a time, and steps over what it does
not need (array data, huge arguments) by reading and discarding. The count of inflated bytes
is checked on every read, so a bomb stops at `limit` with `InflateLimitExceeded`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import IO, Any

from kubeserve_builder.domain.formats import Format

_CHUNK = 256 * 1024


class InflateLimitExceeded(Exception):
    """The stream inflates past the configured limit (a decompression bomb)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the compressed model expands to more than {limit} bytes")
        self.limit = limit


class NoDecompressor(Exception):
    """The format's decompressor is not installed here."""


class ForwardReader(io.RawIOBase):
    """read / readline / tell / forward seek over `source(n) -> bytes` (b"" at the end)."""

    def __init__(self, source: Callable[[int], bytes], limit: int) -> None:
        super().__init__()
        self._source = source
        self._limit = limit
        self._pos = 0  # bytes handed out (or skipped)
        self._inflated = 0  # bytes the decompressor produced
        self._buf = b""
        self._off = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def _avail(self) -> int:
        return len(self._buf) - self._off

    def _fill(self) -> None:
        """Make at least one byte available unless the stream ended (an offset into the
        buffer, not slicing: a scan makes millions of one-byte reads)."""
        if self._avail() or self._eof:
            return
        chunk = self._source(_CHUNK)
        if not chunk:
            self._eof = True
            return
        self._inflated += len(chunk)
        if self._inflated > self._limit:
            raise InflateLimitExceeded(self._limit)
        self._buf, self._off = chunk, 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("unbounded reads are not allowed on a scan stream")
        self._fill()
        if self._avail() >= size:  # the common case: one small read inside the buffer
            out = self._buf[self._off : self._off + size]
            self._off += size
            self._pos += size
            return out
        parts = []
        got = 0
        while got < size:
            self._fill()
            if not self._avail():
                break
            take = self._buf[self._off : self._off + size - got]
            self._off += len(take)
            got += len(take)
            parts.append(take)
        self._pos += got
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        cap = _CHUNK if size is None or size < 0 else size
        parts = []
        got = 0
        while got < cap:
            self._fill()
            if not self._avail():
                break
            nl = self._buf.find(b"\n", self._off, self._off + cap - got)
            end = nl + 1 if nl >= 0 else min(len(self._buf), self._off + cap - got)
            parts.append(self._buf[self._off : end])
            got += end - self._off
            self._off = end
            if nl >= 0:
                break
        self._pos += got
        return b"".join(parts)

    def peek(self, n: int) -> bytes:
        """Up to `n` next bytes without consuming them (the format check)."""
        self._fill()
        while self._avail() < n and not self._eof:
            rest = self._buf[self._off :]
            self._buf, self._off = b"", 0
            self._fill()
            self._buf, self._off = rest + self._buf, 0
            if not self._buf[len(rest) :]:
                break
        return self._buf[self._off : self._off + n]

    def tell(self) -> int:
        return self._pos

    def seek(self, target: int, whence: int = 0) -> int:
        if whence != 0 or target < self._pos:
            raise ValueError("a scan stream only seeks forward")
        while self._pos < target:
            if not self.read(min(target - self._pos, _CHUNK)):
                raise EOFError("the data ends before the position the pickle names")
        return self._pos

    def at_end(self) -> bool:
        self._fill()
        return not self._avail()


def _zlib_source(fh: IO[bytes]) -> Callable[[int], bytes]:
    d = zlib.decompressobj()

    def read(n: int) -> bytes:
        # max_length bounds each call's output; the rest stays in unconsumed_tail.
        while True:
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, n)
            elif d.eof:
                return b""
            else:
                data = fh.read(_CHUNK)
                out = d.decompress(data, n) if data else d.flush()
                if not data and not out:
                    return b""
            if out:
                return out

    return read


def open_decompressed(fmt: Format, fh: IO[bytes], limit: int) -> ForwardReader:
    """A bounded reader of the decompressed bytes of `fh` in format `fmt`."""
    stream: Any
    if fmt is Format.JOBLIB_ZLIB:
        return ForwardReader(_zlib_source(fh), limit)
    if fmt is Format.JOBLIB_GZIP:
        stream = gzip.GzipFile(fileobj=fh)
    elif fmt is Format.JOBLIB_BZ2:
        stream = bz2.BZ2File(fh)
    elif fmt in (Format.JOBLIB_XZ, Format.JOBLIB_LZMA):
        stream = lzma.LZMAFile(fh)
    elif fmt is Format.JOBLIB_LZ4:
        try:
            import lz4.frame  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise NoDecompressor(
                "lz4-compressed joblib files cannot be scanned here (the lz4 package is not "
                "installed); use zlib, gzip, bz2 or xz"
            ) from None
        stream = lz4.frame.LZ4FrameFile(fh)
    else:
        raise ValueError(fmt)
    return ForwardReader(stream.read, limit)


def bounded_member(read: Callable[[int], bytes], limit: int) -> ForwardReader:
    """A bounded reader over any chunked source (a zip member)."""
    return ForwardReader(read, limit)
