"""Wheels on disk: installing them for the trial's import path, and whether they match the
hashes requirements.txt pinned."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry
from installer.sources import WheelFile
from packaging.utils import parse_wheel_filename

from kubeserve_builder.domain.models import BuildFailure, Stage

MIB = 1024 * 1024
MAX_INSTALLED_WHEELS = 4 * 1024 * MIB
# What a malformed wheel raises while installing (a missing RECORD is a KeyError, a path
# outside the target a ValueError, a corrupt member a BadZipFile).
_BAD_WHEEL = (InstallerError, InvalidRecordEntry, ValueError, KeyError, OSError, zipfile.BadZipFile)


def install_wheels(
    wheels: list[Path], dest: Path, *, max_bytes: int = MAX_INSTALLED_WHEELS
) -> Path:
    """Install the wheelhouse (pip's resolved set: no dependency is looked for) into `dest` as
    `pip install --no-deps --target` lays it out, with `pypa/installer`: `.data/purelib` and
    `platlib` beside the root, scripts in `bin/`, no file outside `dest`. Installing a wheel
    copies files and writes launchers; no package code runs. Refused before anything is
    written when the wheels declare more than `max_bytes` unpacked."""
    total = 0
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as archive:
                total += sum(i.file_size for i in archive.infolist())
        except (OSError, zipfile.BadZipFile) as exc:
            reason = f"{wheel.name} is not a readable wheel: {exc}"
            raise BuildFailure(Stage.TRIAL, reason) from None
    if total > max_bytes:
        gib, rest = divmod(max_bytes, 1024 * MIB)
        limit = f"{gib} GiB" if not rest else f"{max_bytes} bytes"
        raise BuildFailure(Stage.TRIAL, f"the wheels unpack to more than {limit}")
    root = str(dest)
    destination = SchemeDictionaryDestination(
        {
            "purelib": root,
            "platlib": root,
            "headers": str(dest / "include"),
            "scripts": str(dest / "bin"),
            "data": root,
        },
        interpreter=sys.executable,
        script_kind="posix",
        # Two wheels may ship one file (a pkgutil namespace's __init__.py): the later wins.
        overwrite_existing=True,
    )
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        try:
            with WheelFile.open(wheel) as source:
                install(source, destination, {"INSTALLER": b"kubeserve-builder\n"})
        except _BAD_WHEEL as exc:
            raise BuildFailure(Stage.TRIAL, f"{wheel.name} cannot be installed: {exc}") from None
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
