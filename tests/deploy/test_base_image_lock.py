"""images/base/frozen-packages.txt is uv.lock's closure of the runtime: walked here straight
from the lock file (not through `uv export`, which freeze.py uses), every package the runtime
and its `s3` extra need under the image's markers is pinned at the locked version, and nothing
else is in the list but the image's tools and the runtime itself. So the image cannot run a
different boto3 (or numpy, or anything below them) than the test suite did."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "images" / "base"


def _freeze() -> Any:
    spec = importlib.util.spec_from_file_location("base_freeze", BASE / "freeze.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


freeze = _freeze()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_closure(root: str, extras: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """name -> version of everything `root[extras]` needs in `env`, read from uv.lock."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        by_name.setdefault(canonical(package["name"]), []).append(package)

    def package_of(dep: dict[str, Any]) -> dict[str, Any]:
        candidates = by_name[canonical(dep["name"])]
        if "version" in dep:  # the lock forks this package: the edge names its version
            candidates = [p for p in candidates if p["version"] == dep["version"]]
        assert len(candidates) == 1, f"{dep} is ambiguous in uv.lock"
        return candidates[0]

    closure: dict[str, str] = {}
    todo = [(package_of({"name": root}), extras)]
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    while todo:
        package, wanted = todo.pop()
        key = (canonical(package["name"]), package["version"], wanted)
        if key in seen:
            continue
        seen.add(key)
        edges = list(package.get("dependencies", []))
        for extra in wanted:
            edges += package.get("optional-dependencies", {}).get(extra, [])
        for dep in edges:
            if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
                continue
            target = package_of(dep)
            name = canonical(target["name"])
            assert closure.get(name, target["version"]) == target["version"], name
            closure[name] = target["version"]
            todo.append((target, tuple(dep.get("extra", ()))))
    return closure


def test_the_frozen_list_is_the_runtimes_locked_closure() -> None:
    frozen = freeze.parse_pins((BASE / "frozen-packages.txt").read_text())
    closure = locked_closure(freeze.RUNTIME, freeze.RUNTIME_EXTRAS, freeze.IMAGE_ENVIRONMENT)
    assert {"fastapi", "numpy", "scikit-learn", "boto3", "botocore"} <= closure.keys()
    for name, version in closure.items():
        assert frozen.get(name) == version, (
            f"{name}: uv.lock has {version}, frozen {frozen.get(name)}"
        )
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {canonical(p["name"]): p["version"] for p in lock["package"]}
    extra = {name: frozen[name] for name in frozen.keys() - closure.keys()}
    # Beyond the closure: the image's tools and the runtime itself, at the lock's versions.
    assert extra == {n: locked[n] for n in (*freeze.IMAGE_TOOLS, freeze.RUNTIME)}
    # The image's direct pins are the lock's too (the Dockerfile installs them under the list).
    for name, version in freeze.parse_pins((BASE / "requirements.txt").read_text()).items():
        assert frozen[name] == version, name


def test_the_image_environment_picks_the_python_3_11_fork() -> None:
    # numpy is forked in the lock by Python version: the image (3.11) gets the 3.11 one.
    closure = locked_closure(freeze.RUNTIME, (), freeze.IMAGE_ENVIRONMENT)
    newer = locked_closure(
        freeze.RUNTIME, (), {**freeze.IMAGE_ENVIRONMENT, "python_full_version": "3.13.0",
                             "python_version": "3.13"},
    )  # fmt: skip
    assert "boto3" not in closure  # only with the s3 extra
    if closure["numpy"] == newer["numpy"]:
        pytest.skip("uv.lock does not fork numpy by Python version any more")
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions = sorted(p["version"] for p in lock["package"] if p["name"] == "numpy")
    assert closure["numpy"] == versions[0] and newer["numpy"] == versions[-1]


@pytest.mark.skipif(shutil.which("uv") is None, reason="freeze.py reads the lock with uv export")
def test_freeze_check_passes_offline() -> None:
    # The committed file is what the generator writes now (uv export --frozen --offline).
    result = subprocess.run(
        [sys.executable, str(BASE / "freeze.py"), "--check"],
        capture_output=True, text=True, timeout=180, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
