"""Bounded decompression (issue 11.6): the static scan streams compressed artifacts, so a
small file inflating to 1 GiB neither grows the scanning process nor gets past the limit.

The RSS is measured in a real process running the builder's scan (peak resident set, VmHWM,
before and after), not estimated."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from kubeserve_builder.domain.models import BuildFailure
from kubeserve_builder.services.inspection import inspect_artifact

GIB = 1024**3
MIB = 1024**2


# A pickle whose one argument is `size` zero bytes: PROTO 4, BINBYTES8 <size>, data, STOP.
def _bomb_parts(size: int) -> tuple[bytes, bytes]:
    return b"\x80\x04\x8e" + size.to_bytes(8, "little"), b"."


def _write_bomb(path: Path, kind: str, size: int) -> None:
    head, tail = _bomb_parts(size)
    zeros = bytes(16 * MIB)
    if kind == "zlib":
        c = zlib.compressobj(9)
        with path.open("wb") as out:
            out.write(c.compress(head))
            for _ in range(size // len(zeros)):
                out.write(c.compress(zeros))
            out.write(c.compress(tail) + c.flush())
        return
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind]
    with opener(path, "wb") as fh:  # type: ignore[operator]
        fh.write(head)
        for _ in range(size // len(zeros)):
            fh.write(zeros)
        fh.write(tail)


_MEASURE = """
import json, sys
from pathlib import Path
from kubeserve_builder.domain.models import BuildFailure
from kubeserve_builder.services.inspection import inspect_artifact

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

before = hwm()
try:
    limit = int(sys.argv[2])
    result = inspect_artifact(Path(sys.argv[1]), max_bytes=1 << 40, max_decompressed=limit)
    outcome = {"ok": True, "decompressed": result.details.get("decompressed_size")}
except BuildFailure as exc:
    outcome = {"ok": False, "stage": exc.stage.value, "reason": exc.reason}
outcome["growth"] = hwm() - before
print(json.dumps(outcome))
"""


def _scan_in_a_process(path: Path, limit: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(limit)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    outcome: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return outcome


@pytest.mark.parametrize("kind", ["zlib", "gzip"])
def test_a_small_file_inflating_to_one_gib_is_scanned_in_bounded_memory(
    tmp_path: Path, kind: str
) -> None:
    bomb = tmp_path / f"bomb.{kind}"
    _write_bomb(bomb, kind, GIB)
    assert bomb.stat().st_size < 2 * MIB  # "a 1 MiB upload"

    outcome = _scan_in_a_process(bomb, 8 * GIB)

    assert outcome["ok"] is True, outcome  # a well-formed pickle of zeros: it passes the scan
    assert outcome["decompressed"] == GIB + 12
    assert isinstance(outcome["growth"], int) and outcome["growth"] < 64 * MIB, outcome


def test_an_artifact_inflating_past_the_limit_fails_with_a_clear_reason(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zlib"
    _write_bomb(bomb, "zlib", GIB)

    outcome = _scan_in_a_process(bomb, 256 * MIB)

    assert outcome["ok"] is False
    assert outcome["stage"] == "static"
    assert outcome["reason"] == f"the compressed model expands to more than {256 * MIB} bytes"
    assert isinstance(outcome["growth"], int) and outcome["growth"] < 64 * MIB, outcome


@pytest.mark.parametrize("kind", ["bz2", "xz", "zip"])
def test_every_compressed_format_stops_at_the_limit(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"bomb.{kind}"
    if kind == "zip":
        head, tail = _bomb_parts(64 * MIB)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            with archive.open("archive/data.pkl", "w") as member:
                member.write(head)
                for _ in range(4):
                    member.write(bytes(16 * MIB))
                member.write(tail)
    else:
        _write_bomb(path, kind, 64 * MIB)
    with pytest.raises(BuildFailure, match=f"expands to more than {16 * MIB} bytes"):
        inspect_artifact(path, max_bytes=1 << 30, max_decompressed=16 * MIB)


def test_huge_arguments_inside_a_plain_pickle_are_stepped_over(tmp_path: Path) -> None:
    # A global hidden after a large bytes argument is still seen.
    head, _ = _bomb_parts(8 * MIB)
    data = head + bytes(8 * MIB) + b"cposix\nsystem\n(Vtrue\ntR0N."
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    result = inspect_artifact(path, max_bytes=1 << 30, max_decompressed=1 << 30)
    assert [v.dotted for v in result.dangerous] == ["posix.system"]
