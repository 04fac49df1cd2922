"""Wheels on disk: unpacking them for the trial's import path, and whether they match the
hashes requirements.txt pinned."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

from kubeserve_builder.domain.models import BuildFailure, Stage

MIB = 1024 * 1024
_MAX_UNPACKED_WHEELS = 4 * 1024 * MIB


def unpack_wheels(wheels: list[Path], dest: Path) -> Path:
    """Unpack wheels as `pip install --no-deps --target` lays them out (a wheel is a zip of
    its site-packages tree; unpacking runs no code), for the trial's import path."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            total += sum(i.file_size for i in archive.infolist())
            if total > _MAX_UNPACKED_WHEELS:
                raise BuildFailure(Stage.TRIAL, "the wheels unpack to more than 4 GiB")
            # extractall drops absolute paths and '..' components.
            archive.extractall(dest)
    for data_dir in dest.glob("*.data"):
        for sub in ("purelib", "platlib"):
            inner = data_dir / sub
            if inner.is_dir():
                for item in inner.iterdir():
                    shutil.move(str(item), dest / item.name)
    return dest


def check_hashes(hashes: dict[str, list[str]], wheels: list[Path]) -> None:
    for wheel in wheels:
        name = parse_wheel_filename(wheel.name)[0]
        allowed = hashes.get(name)
        if not allowed:
            continue
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if f"sha256:{digest}" not in [h.lower() for h in allowed]:
            raise BuildFailure(
                Stage.WHEELHOUSE,
                f"{wheel.name} has sha256 {digest}, not one of the hashes requirements.txt "
                f"allows for {name}",
            )
