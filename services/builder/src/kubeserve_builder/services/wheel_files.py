"""Wheels on disk: installing them for the trial's import path, and whether they match the
hashes requirements.txt pinned."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kubeserve_common.wheels import MAX_INSTALLED_BYTES, WheelRefused
from kubeserve_common.wheels import install_wheels as install_wheelhouse
from packaging.utils import parse_wheel_filename

from kubeserve_builder.domain.models import BuildFailure, Stage


def install_wheels(wheels: list[Path], dest: Path, *, max_bytes: int = MAX_INSTALLED_BYTES) -> Path:
    """The trial's import path: the wheelhouse installed into `dest`
    (`kubeserve_common.wheels`); a wheel that cannot be installed fails the trial stage."""
    try:
        return install_wheelhouse(wheels, dest, max_bytes=max_bytes, by="kubeserve-builder")
    except WheelRefused as exc:
        raise BuildFailure(Stage.TRIAL, str(exc)) from None


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
