"""Installing a plan's missing packages with pip (the image's `start.sh`, through
`python -m kubeserve_runtime.requirements install`); parsing and planning are in
`kubeserve_runtime.requirements`."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubeserve_runtime.requirements import (
    InstallError,
    Plan,
    installed_versions,
    unmet_requirements,
)


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


def _run_pip(args: list[str], pip: Sequence[str], timeout: float, result: InstallResult) -> None:
    cmd = [*pip, "install", "--disable-pip-version-check", "--no-input", "--no-cache-dir", *args]
    result.commands.append(cmd)
    env = dict(os.environ)
    env.setdefault("PIP_NO_WARN_SCRIPT_LOCATION", "1")
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"pip did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise InstallError(f"pip install failed (exit {proc.returncode}):\n{tail}")


def _unmet_dependencies(target: Path, base: Mapping[str, str]) -> list[str]:
    """Requires-Dist of what is in `target` that neither `target` nor `base` satisfies."""
    have = {**base, **installed_versions([str(target)])}
    dists = importlib.metadata.distributions(path=[str(target)])
    return unmet_requirements((t for d in dists for t in d.requires or []), have)


def install(
    plan: Plan,
    wheelhouse_dir: str | os.PathLike[str] | None = None,
    *,
    target: str | os.PathLike[str] | None = None,
    pip: Sequence[str] | None = None,
    timeout: float = 600,
    max_rounds: int = 10,
) -> InstallResult:
    """Install what the plan lacks, from the wheelhouse (`--no-index`) when it exists.

    With `target`, packages go into that directory (an emptyDir put first on PYTHONPATH, since
    the image's site-packages is read-only): each round installs with `--no-deps` and then adds
    the dependencies that neither the target nor the image satisfy, so the image's numpy is
    never reinstalled. Without it, pip installs into the current environment with its own
    resolver.
    """
    result = InstallResult()
    wanted = [item.requirement for item in plan.to_install]
    if not wanted:
        return result
    pip = list(pip) if pip is not None else pip_command()
    source: list[str] = []
    if wheelhouse_dir is not None and Path(wheelhouse_dir).is_dir():
        source = ["--no-index", "--find-links", str(Path(wheelhouse_dir).resolve())]
    if target is None:
        _run_pip([*source, *wanted], pip, timeout, result)
        result.installed = wanted
        return result
    target_path = Path(target)
    target_path.mkdir(parents=True, exist_ok=True)
    base = installed_versions([p for p in sys.path if Path(p).resolve() != target_path.resolve()])
    for _ in range(max_rounds):
        # --upgrade lets a later round replace what an earlier one put into the target.
        _run_pip(
            [*source, "--no-deps", "--upgrade", "--target", str(target_path), *wanted],
            pip,
            timeout,
            result,
        )
        result.installed.extend(wanted)
        wanted = _unmet_dependencies(target_path, base)
        if not wanted:
            return result
    raise InstallError(f"dependencies still unmet after {max_rounds} rounds: {wanted}")


# -- CLI ---------------------------------------------------------------------------------------
