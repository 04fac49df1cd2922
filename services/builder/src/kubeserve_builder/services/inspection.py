"""Static checks of a fetched artifact: size, format by magic bytes, the pickle import scan.

Synchronous and CPU-bound (decompression, opcode scan): callers run `inspect_artifact` on a
worker thread. Nothing here unpickles; the scanner only parses opcodes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from kubeserve_builder.domain.formats import COMPRESSED, Format, describe_head, detect
from kubeserve_builder.domain.models import BuildFailure, Stage
from kubeserve_builder.domain.pickle_scan import PickleScan, PickleScanError, scan_pickle_stream
from kubeserve_builder.domain.policy import GlobalVerdict, classify_all

_CHUNK = 1024 * 1024
_MAX_ZIP_MEMBER = 512 * 1024 * 1024


@dataclass
class Inspection:
    format: Format
    protocol: int | None = None
    verdicts: list[GlobalVerdict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dangerous(self) -> list[GlobalVerdict]:
        return [v for v in self.verdicts if v.verdict == "dangerous"]


def _fail(reason: str, **details: Any) -> BuildFailure:
    return BuildFailure(Stage.STATIC, reason, **details)


def _decompressor(fmt: Format, fh: IO[bytes]) -> IO[bytes]:
    if fmt is Format.JOBLIB_GZIP:
        # A binary file object like the others; typeshed declares GzipFile a BufferedIOBase only
        # (BZ2File and LZMAFile are also IO[bytes] there).
        return cast(IO[bytes], gzip.GzipFile(fileobj=fh))
    if fmt is Format.JOBLIB_BZ2:
        return bz2.BZ2File(fh)
    if fmt in (Format.JOBLIB_XZ, Format.JOBLIB_LZMA):
        return lzma.LZMAFile(fh)
    raise ValueError(fmt)


def _decompress(path: Path, fmt: Format, dest: Path, limit: int) -> int:
    """Decompress to `dest`, refusing more than `limit` bytes (a zip bomb); return the size."""
    written = 0
    with path.open("rb") as src, dest.open("wb") as out:
        if fmt is Format.JOBLIB_ZLIB:
            # joblib writes one zlib stream; decompress it in bounded pieces.
            d = zlib.decompressobj()
            while chunk := src.read(_CHUNK):
                data = d.decompress(chunk, limit + 1 - written)
                while True:
                    written += len(data)
                    if written > limit:
                        raise _fail(f"the compressed model expands to more than {limit} bytes")
                    out.write(data)
                    if not d.unconsumed_tail:
                        break
                    data = d.decompress(d.unconsumed_tail, limit + 1 - written)
            data = d.flush()
            written += len(data)
            out.write(data)
        else:
            stream = _decompressor(fmt, src)
            while chunk := stream.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise _fail(f"the compressed model expands to more than {limit} bytes")
                out.write(chunk)
    if written > limit:
        raise _fail(f"the compressed model expands to more than {limit} bytes")
    return written


def _scan(fh: IO[bytes], size: int, what: str) -> PickleScan:
    try:
        return scan_pickle_stream(fh, size)
    except PickleScanError as exc:
        raise _fail(f"{what} is not a valid pickle (corrupt or truncated): {exc}") from None


def inspect_artifact(
    path: Path, *, max_bytes: int, max_decompressed: int, scratch: Path
) -> Inspection:
    """Size, format and (for pickles) the import scan; `BuildFailure(static)` when the file
    cannot be a loadable model."""
    size = path.stat().st_size
    if size == 0:
        raise _fail("the model file is empty (0 bytes)")
    if size > max_bytes:
        raise _fail(f"the model file has {size} bytes; the limit is {max_bytes}")
    with path.open("rb") as fh:
        head = fh.read(4096)
    detected = detect(head)
    if detected is None:
        raise _fail(
            "unrecognised model format (first bytes: "
            f"{describe_head(head)}); expected a pickle/joblib file, an ONNX model, an XGBoost "
            "JSON/UBJ model or a LightGBM text model"
        )
    result = Inspection(detected.format, detected.protocol)
    result.details["format"] = detected.format.value
    result.details["size"] = size

    scans: list[tuple[str, PickleScan]] = []
    if detected.format is Format.JOBLIB_LZ4:
        raise _fail("lz4-compressed joblib files are not supported; use zlib, gzip or xz")
    if detected.format in COMPRESSED:
        plain = scratch / "decompressed.pkl"
        try:
            plain_size = _decompress(path, detected.format, plain, max_decompressed)
        except BuildFailure:
            raise
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise _fail(f"corrupt {detected.format.value} data: {exc}") from None
        result.details["decompressed_size"] = plain_size
        with plain.open("rb") as fh:
            inner = detect(fh.read(64))
            if inner is None or inner.format is not Format.PICKLE:
                raise _fail(f"the {detected.format.value} stream does not hold a pickle")
            result.protocol = inner.protocol
            fh.seek(0)
            scans.append(("model", _scan(fh, plain_size, "the decompressed model")))
        plain.unlink()
    elif detected.format is Format.PICKLE:
        with path.open("rb") as fh:
            scans.append(("model", _scan(fh, size, "the model file")))
    elif detected.format is Format.ZIP:
        scans.extend(_scan_zip(path))
    else:
        result.details["scan"] = "not needed: this format runs no code when loaded"

    globals_: list[tuple[str, str]] = []
    notes: list[str] = []
    for member, scan in scans:
        notes += [f"{member}: {n}" for n in scan.notes]
        for g in scan.globals:
            if g not in globals_:
                globals_.append(g)
        if scan.joblib_arrays:
            result.details["joblib_arrays"] = (
                result.details.get("joblib_arrays", 0) + scan.joblib_arrays
            )
    if scans:
        result.verdicts = classify_all(globals_)
        result.details["pickle_protocol"] = result.protocol
        result.details["globals"] = {
            kind: [v.to_dict() for v in result.verdicts if v.verdict == kind]
            for kind in ("dangerous", "unknown", "safe")
        }
        if notes:
            result.details["notes"] = notes
    return result


def _scan_zip(path: Path) -> list[tuple[str, PickleScan]]:
    """PyTorch archives keep their object graph in `*/data.pkl`: scan every pickle inside."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"corrupt zip archive: {exc}") from None
    scans: list[tuple[str, PickleScan]] = []
    with archive:
        members = [i for i in archive.infolist() if i.filename.endswith((".pkl", ".pickle"))]
        if not members:
            raise _fail("a zip archive without a pickle inside is not a model format we load")
        for info in members:
            if info.file_size > _MAX_ZIP_MEMBER:
                raise _fail(f"{info.filename} inside the archive is too large to scan")
            with archive.open(info) as member:
                data = member.read(_MAX_ZIP_MEMBER + 1)
            import io

            scans.append((info.filename, _scan(io.BytesIO(data), len(data), info.filename)))
    return scans


def describe_dangerous(verdicts: list[GlobalVerdict]) -> str:
    listed = ", ".join(f"{v.dotted} ({v.why})" for v in verdicts[:10])
    more = f" and {len(verdicts) - 10} more" if len(verdicts) > 10 else ""
    return (
        f"the pickle imports dangerous globals: {listed}{more}. Loading it would run them; "
        "a model file must not run commands, open files or reach the network when loaded"
    )
