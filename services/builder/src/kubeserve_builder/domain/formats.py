"""Model file formats told apart by their first bytes (never by the name the tenant chose)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Format(enum.StrEnum):
    PICKLE = "pickle"  # a plain pickle, or an uncompressed joblib file
    JOBLIB_ZLIB = "joblib-zlib"
    JOBLIB_GZIP = "joblib-gzip"
    JOBLIB_BZ2 = "joblib-bz2"
    JOBLIB_XZ = "joblib-xz"
    JOBLIB_LZMA = "joblib-lzma"
    JOBLIB_LZ4 = "joblib-lz4"
    ZIP = "zip"  # PyTorch's archive format (data.pkl inside) or another zip
    ONNX = "onnx"
    XGBOOST_JSON = "xgboost-json"
    XGBOOST_UBJ = "xgboost-ubj"
    LIGHTGBM = "lightgbm-text"


COMPRESSED = {
    Format.JOBLIB_ZLIB,
    Format.JOBLIB_GZIP,
    Format.JOBLIB_BZ2,
    Format.JOBLIB_XZ,
    Format.JOBLIB_LZMA,
    Format.JOBLIB_LZ4,
}
# Protocol-0/1 pickles start with an ASCII opcode; these are the ones pickle.dump can start with.
_PROTO0_STARTS = b"(cdI]}NSVLFJK\x88\x89)"


# Formats whose files start with a fixed magic number (zlib's header is a checksum, see below).
_MAGIC = (
    (b"PK\x03\x04", Format.ZIP),
    (b"\x1f\x8b", Format.JOBLIB_GZIP),
    (b"BZh", Format.JOBLIB_BZ2),
    (b"\xfd7zXZ\x00", Format.JOBLIB_XZ),
    (b"\x5d\x00\x00", Format.JOBLIB_LZMA),
    (b"\x04\x22\x4d\x18", Format.JOBLIB_LZ4),
)


@dataclass(frozen=True)
class Detected:
    format: Format
    protocol: int | None = None


def detect(head: bytes) -> Detected | None:
    """The format of a file from its first bytes (at least 64 when the file has them)."""
    if not head:
        return None
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return Detected(Format.PICKLE, head[1])
    for magic, known in _MAGIC:
        if head.startswith(magic):
            return Detected(known)
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return Detected(Format.JOBLIB_ZLIB)
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return Detected(Format.LIGHTGBM)
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        if stripped[1:2] in (b"L", b"i", b"U", b"l", b"I", b"$", b"#") and b"learner" in head:
            return Detected(Format.XGBOOST_UBJ)
        if b'"learner"' in head or b'"version"' in head:
            return Detected(Format.XGBOOST_JSON)
        return None
    if _looks_like_onnx(head):
        return Detected(Format.ONNX)
    if head[:1] in [bytes([c]) for c in _PROTO0_STARTS]:
        return Detected(Format.PICKLE, 0)
    return None


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto: field 1 (ir_version, varint, small) first, then a length-delimited field.
    if len(head) < 4 or head[0] != 0x08 or not 1 <= head[1] <= 20:
        return False
    tag = head[2]
    return tag & 0x07 == 2 and (tag >> 3) in range(2, 21)


def describe_head(head: bytes) -> str:
    return head[:16].hex(" ")
