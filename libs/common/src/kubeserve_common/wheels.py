"""Installing a version's wheelhouse into a plain directory (put first on an import path): the
builder's trial and the local backend's replicas use the same layout. `pypa/installer` lays the
wheels out as `pip install --no-deps --target` would: `.data/purelib` and `platlib` beside the
root, scripts in `bin/`, nothing outside the directory. The wheelhouse is pip's resolved set,
so no dependency is looked for. Installing copies files and writes launchers; no package code
runs, so a control-plane process may do it."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry
from installer.sources import WheelFile

# What a malformed wheel raises while installing (a missing RECORD is a KeyError, a path
# outside the target a ValueError, a corrupt member a BadZipFile).
_BAD_WHEEL = (InstallerError, InvalidRecordEntry, ValueError, KeyError, OSError, zipfile.BadZipFile)


# What a wheelhouse may unpack to, for the builder's trial and for the replicas alike: one
# limit, so a version the builder accepted is never refused at deploy time.
MAX_INSTALLED_BYTES = 4 * 1024**3


class WheelRefused(ValueError):
    """A wheel that cannot be installed (unreadable, malformed, escaping, too large); the
    message names it."""


def install_wheels(
    wheels: list[Path], dest: Path, *, by: str, max_bytes: int = MAX_INSTALLED_BYTES
) -> Path:
    """Install `wheels` into `dest`; `by` is written to each INSTALLER file. Refused before
    anything is written when the wheels declare more than `max_bytes` unpacked."""
    total = 0
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as archive:
                total += sum(i.file_size for i in archive.infolist())
        except (OSError, zipfile.BadZipFile) as exc:
            raise WheelRefused(f"{wheel.name} is not a readable wheel: {exc}") from None
    if total > max_bytes:
        gib, rest = divmod(max_bytes, 1024**3)
        limit = f"{gib} GiB" if not rest else f"{max_bytes} bytes"
        raise WheelRefused(f"the wheels unpack to more than {limit}")
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
                install(source, destination, {"INSTALLER": f"{by}\n".encode()})
        except _BAD_WHEEL as exc:
            raise WheelRefused(f"{wheel.name} cannot be installed: {exc}") from None
    return dest
