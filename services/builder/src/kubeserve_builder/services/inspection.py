"""Static checks of a fetched artifact: size, format by magic bytes, the pickle import scan.

Synchronous and CPU-bound (decompression, opcode scan): callers run `inspect_artifact` on a
worker thread. Nothing here unpickles; the scanner only parses opcodes.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from kubeserve_builder.domain.formats import COMPRESSED, Format, describe_head, detect
from kubeserve_builder.domain.models import BuildFailure, Stage
from kubeserve_builder.domain.pickle_scan import PickleScan, PickleScanError, scan_pickle_stream
from kubeserve_builder.domain.policy import GlobalVerdict, classify_all
from kubeserve_builder.services.streams import (
    InflateLimitExceeded,
    NoDecompressor,
    bounded_member,
    open_decompressed,
)


@dataclass
class Inspection:
    format: Format
    protocol: int | None = None
    globals: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[GlobalVerdict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dangerous(self) -> list[GlobalVerdict]:
        return [v for v in self.verdicts if v.verdict == "dangerous"]

    @property
    def refused(self) -> list[GlobalVerdict]:
        return [v for v in self.verdicts if v.refused]

    def judge(self, provided: Collection[str] = ()) -> list[GlobalVerdict]:
        """(Re)classify the globals, `provided` being the requirements' top-level modules;
        returns the refused ones and records the verdicts in the details."""
        self.verdicts = classify_all(self.globals, provided)
        self.details["globals"] = {
            kind: [v.to_dict() for v in self.verdicts if v.verdict == kind]
            for kind in ("dangerous", "unknown", "requirement", "safe")
        }
        return self.refused


def _fail(reason: str, **details: Any) -> BuildFailure:
    return BuildFailure(Stage.STATIC, reason, **details)


def _scan(fh: IO[bytes], size: int, what: str) -> PickleScan:
    try:
        return scan_pickle_stream(fh, size)
    except PickleScanError as exc:
        raise _fail(f"{what} is not a valid pickle (corrupt or truncated): {exc}") from None


def _scan_compressed(path: Path, fmt: Format, limit: int, result: Inspection) -> PickleScan:
    """Scan the decompressed stream as it inflates (nothing written, bounded memory)."""
    with path.open("rb") as raw:
        try:
            stream = open_decompressed(fmt, raw, limit)
            inner = detect(stream.peek(64))
            if inner is None or inner.format is not Format.PICKLE:
                raise _fail(f"the {fmt.value} stream does not hold a pickle")
            result.protocol = inner.protocol
            scan = _scan(cast(IO[bytes], stream), limit, "the decompressed model")
        except InflateLimitExceeded as exc:
            raise _fail(str(exc)) from None
        except NoDecompressor as exc:
            raise _fail(str(exc)) from None
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise _fail(f"corrupt {fmt.value} data: {exc}") from None
    result.details["decompressed_size"] = stream.tell()
    return scan


def inspect_artifact(path: Path, *, max_bytes: int, max_decompressed: int) -> Inspection:
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
    if detected.format in COMPRESSED:
        scans.append(("model", _scan_compressed(path, detected.format, max_decompressed, result)))
    elif detected.format is Format.PICKLE:
        with path.open("rb") as fh:
            scans.append(("model", _scan(fh, size, "the model file")))
    elif detected.format is Format.ZIP:
        scans.extend(_scan_zip(path, max_decompressed))
    else:
        result.details["scan"] = "not needed: this format runs no code when loaded"

    globals_ = result.globals
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
        result.judge()
        result.details["pickle_protocol"] = result.protocol
        if notes:
            result.details["notes"] = notes
    return result


def _scan_zip(path: Path, limit: int) -> list[tuple[str, PickleScan]]:
    """PyTorch archives keep their object graph in `*/data.pkl`: scan every pickle inside,
    streamed like a compressed model (the sizes a zip header states are not trusted)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"corrupt zip archive: {exc}") from None
    scans: list[tuple[str, PickleScan]] = []
    with archive:
        members = [i for i in archive.infolist() if i.filename.endswith((".pkl", ".pickle"))]
        if not members:
            raise _fail("a zip archive without a pickle inside is not a model format we load")
        budget = limit
        for info in members:
            try:
                with archive.open(info) as member:
                    stream = bounded_member(member.read, budget)
                    scan = _scan(cast(IO[bytes], stream), budget, info.filename)
                    scans.append((info.filename, scan))
                    budget -= stream.tell()
            except InflateLimitExceeded as exc:
                raise _fail(f"{info.filename} inside the archive: {exc}") from None
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise _fail(f"corrupt zip member {info.filename}: {exc}") from None
    return scans
