"""Pickle opcodes read with bounded memory, from files or forward-only streams.

`pickletools.genops` reads every argument whole (a 1 GiB BINBYTES8 is 1 GiB in memory) and
reads text lines without a cap. This reader steps over arguments larger than `_BIG_ARG` (their
content cannot name a global; a bomb is mostly one huge argument) and caps text lines.
Errors are pickletools' own: `ValueError` for bad data, `EOFError` for a truncated stream.
"""

from __future__ import annotations

import io
import pickletools
import struct
from collections.abc import Iterator
from typing import IO, Any


class Skipped:
    """Stands in for an argument too large to read (bytes or text nobody needs)."""


SKIPPED = Skipped()
# Arguments (bytes, strings, longs) larger than this are stepped over, never read into memory:
# their content cannot name a global, and a bomb is mostly one huge argument.
_BIG_ARG = 1024 * 1024
_CODE2OP = {op.code: op for op in pickletools.opcodes}
_MAX_LINE = 64 * 1024  # protocol-0 text arguments (GLOBAL names, INT, STRING)
# Length prefixes of the variable-size arguments (pickletools' TAKEN_FROM_ARGUMENT* codes).
_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1),
    pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
    pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4),
    pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8),
}


class _Lines:
    """The stream as pickletools' readers see it, with text lines capped."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def read(self, n: int) -> bytes:
        return self.fh.read(n)

    def readline(self) -> bytes:
        line = self.fh.readline(_MAX_LINE)
        if len(line) >= _MAX_LINE and not line.endswith(b"\n"):
            raise ValueError(f"a text argument longer than {_MAX_LINE} bytes")
        return line


def read_ops(fh: IO[bytes]) -> Iterator[tuple[pickletools.OpcodeInfo, Any, int]]:
    """`pickletools.genops` with bounded memory: huge arguments are skipped (see _BIG_ARG),
    and it works on forward-only streams (a decompressor) as well as on files."""
    lines = _Lines(fh)
    while True:
        pos = fh.tell()
        code = fh.read(1)
        if not code:
            raise EOFError("pickle ended without STOP")
        op = _CODE2OP.get(code.decode("latin-1"))
        if op is None:
            raise ValueError(f"unknown opcode {code!r}")
        arg: Any = None
        if op.arg is not None:
            arg = _read_arg(op.arg, fh, lines)
        yield op, arg, pos
        if op.name == "STOP":
            return


def _read_arg(desc: pickletools.ArgumentDescriptor, fh: IO[bytes], lines: _Lines) -> Any:
    if desc.n not in _PREFIX:  # fixed size, or newline-terminated (capped by _Lines)
        return desc.reader(lines)  # type: ignore[arg-type]
    fmt, width = _PREFIX[desc.n]
    prefix = fh.read(width)
    if len(prefix) != width:
        raise EOFError("truncated argument length")
    (length,) = struct.unpack(fmt, prefix)
    if length < 0:
        raise ValueError("negative argument length")
    if length > _BIG_ARG:
        fh.seek(fh.tell() + length)  # forward streams discard in bounded chunks
        return 0 if desc.name.startswith("long") else SKIPPED
    data = fh.read(length)
    if len(data) != length:
        raise EOFError("truncated argument")
    return desc.reader(io.BytesIO(prefix + data))
