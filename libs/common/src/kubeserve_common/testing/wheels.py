"""Test helper: small but well-formed pure-Python wheels (METADATA, WHEEL, RECORD with hashes),
for the builder's resolution and trial tests and the local backend's wheelhouse tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    root: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    files: dict[str, bytes] | None = None,
) -> Path:
    """A pure-Python wheel `name-version-py3-none-any.whl` under root/files declaring
    `requires` (Requires-Dist) and holding `files` (path -> bytes; a path under
    `<name>-<version>.data/purelib/` is installed beside the root)."""
    stem = f"{name.replace('-', '_')}-{version}"
    dist_info = f"{stem}.dist-info"
    contents = dict(files or {})
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: kubeserve-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = [_record_line(n, d) for n, d in contents.items()] + [f"{dist_info}/RECORD,,"]
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    (root / "files").mkdir(parents=True, exist_ok=True)
    wheel = root / "files" / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, data in contents.items():
            zf.writestr(member, data)
    return wheel
