"""Installing a plan's missing packages with pip (the image's `start.sh`, through
`python -m kubeserve_runtime.requirements install`): a wheelhouse's resolved set in one
`pip install --no-deps`, no resolution of our own; parsing and planning are in
`kubeserve_runtime.requirements`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from kubeserve_runtime.requirements import InstallError, Plan


def pip_command() -> list[str]:
    """How to run pip: this interpreter's pip, else a pip on PATH (same Python minor)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for candidate in ("pip3", "pip"):
        found = shutil.which(candidate)
        if found:
            return [found]
    raise InstallError("pip is not available to install the missing packages")


@dataclass
class InstallResult:
    installed: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


def _run_pip(
    args: list[str],
    pip: Sequence[str],
    timeout: float,
    result: InstallResult,
    target: Path | None = None,
) -> None:
    cmd = [*pip, "install", "--disable-pip-version-check", "--no-input", "--no-cache-dir", *args]
    result.commands.append(cmd)
    env = dict(os.environ)
    env.setdefault("PIP_NO_WARN_SCRIPT_LOCATION", "1")
    if target is not None:  # what is already in the target counts as installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"pip did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise InstallError(f"pip install failed (exit {proc.returncode}):\n{tail}")


def _wheelhouse_set(wheelhouse: Path) -> tuple[list[Path], list[str]]:
    """The wheels of the wheelhouse and their `name==version` pins: one wheel per project,
    since the builder's resolver picked exactly one version of each."""
    wheels = sorted(wheelhouse.glob("*.whl"))
    versions: dict[str, list[str]] = {}
    pins: list[str] = []
    for wheel in wheels:
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename as exc:
            raise InstallError(f"{wheel.name} in the wheelhouse is not a wheel: {exc}") from exc
        versions.setdefault(canonicalize_name(name), []).append(str(version))
        pins.append(f"{name}=={version}")
    twice = {name: found for name, found in versions.items() if len(found) > 1}
    if twice:
        listed = "; ".join(f"{name} {', '.join(found)}" for name, found in twice.items())
        raise InstallError(
            f"the wheelhouse holds several versions of one package ({listed}); it must be "
            "the builder's resolved set, one wheel per package"
        )
    return wheels, pins


def _resolve(
    wanted: list[str], pip: Sequence[str], timeout: float, result: InstallResult, target: Path
) -> list[str]:
    """pip's resolver (`--dry-run --report`) against this environment with the target first
    on its path: exact pins of what neither the image nor the target already satisfies."""
    with tempfile.TemporaryDirectory(prefix="kubeserve-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        _run_pip(
            ["--dry-run", "--quiet", "--report", str(report), *wanted], pip, timeout, result, target
        )
        try:
            items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
            return [f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InstallError(f"pip's resolution report is unreadable: {exc}") from exc


def install(
    plan: Plan,
    wheelhouse_dir: str | os.PathLike[str] | None = None,
    *,
    target: str | os.PathLike[str] | None = None,
    pip: Sequence[str] | None = None,
    timeout: float = 600,
) -> InstallResult:
    """Install what the plan lacks, in one pip call.

    With a wheelhouse (`--no-index`): it is the builder's resolved closure of what the image
    lacks (pip's resolver ran there, against the image's package list), so every wheel in it is
    installed with `--no-deps` and pip resolves nothing; the image's packages are never
    reinstalled, since the builder left them out. Without one, pip's own resolver works from
    the configured index.

    With `target`, packages go into that directory (an emptyDir put first on PYTHONPATH, since
    the image's site-packages is read-only); without a wheelhouse, pip's resolver first picks
    what neither the image nor the target has, and only that goes in. Without `target`, pip
    installs into the current environment.
    """
    result = InstallResult()
    wanted = [item.requirement for item in plan.to_install]
    if not wanted:
        return result
    pip = list(pip) if pip is not None else pip_command()
    target_args: list[str] = []
    target_path = Path(target) if target is not None else None
    if target_path is not None:
        target_path.mkdir(parents=True, exist_ok=True)
        # --upgrade: a restart's install replaces what an earlier one left in the target.
        target_args = ["--upgrade", "--target", str(target_path)]
    if wheelhouse_dir is not None and Path(wheelhouse_dir).is_dir():
        house = Path(wheelhouse_dir).resolve()
        wheels, pins = _wheelhouse_set(house)
        # The plan's requirements too: one the wheelhouse cannot meet is pip's error naming it.
        args = ["--no-index", "--find-links", str(house), "--no-deps", *wanted]
        _run_pip([*args, *target_args, *map(str, wheels)], pip, timeout, result, target_path)
        result.installed = pins or wanted
        return result
    if target_path is None:
        _run_pip(wanted, pip, timeout, result)
        result.installed = wanted
        return result
    pins = _resolve(wanted, pip, timeout, result, target_path)
    if pins:
        _run_pip(["--no-deps", *target_args, *pins], pip, timeout, result, target_path)
    result.installed = pins
    return result
