"""The trial's import path is the wheelhouse installed with `pypa/installer` (no hand-made
unpacking, no dependency lookup: the wheelhouse is pip's resolved set): a dependency chain
A -> B whose B ships its module in `.data/purelib` is importable, a wheel writing outside the
target or a set too large to unpack is refused before the trial."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builder_helpers import joblib_bytes, make_wheel, serve_index
from kubeserve_builder.adapters.wheels import WheelDownloader, WheelSource
from kubeserve_builder.domain.models import BuildFailure, Stage
from kubeserve_builder.services.wheel_files import install_wheels
from kubeserve_common.events.catalog import VersionBuilt

# B: the behaviour; A: the model class, built on B (unpickling A's class imports B).
MODEL_SOURCE = b"""
import numpy as np


class Summer:
    factor = 1

    def predict(self, x):
        return np.asarray(x, dtype=float).sum(axis=1) * self.factor
"""
APP_SOURCE = b"""
from ks_model import Summer


class Tripler(Summer):
    n_features_in_ = 2
    factor = 3
"""


@pytest.fixture(scope="module")
def chain_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An index where ks-app (A) needs ks-model (B), whose module is in its `.data/purelib`
    part, and B needs numpy (the image's); and their sources, to pickle A's class here."""
    root = tmp_path_factory.mktemp("chain-index")
    wheels = [
        make_wheel(
            root,
            "ks-app",
            "1.0",
            requires=("ks-model>=1",),
            files={"ks_app/__init__.py": APP_SOURCE},
        ),
        make_wheel(root, "ks-model", "0.9"),
        make_wheel(
            root,
            "ks-model",
            "1.1",
            requires=("numpy>=1.20",),
            files={"ks_model-1.1.data/purelib/ks_model/__init__.py": MODEL_SOURCE},
        ),
    ]
    source = root / "source"
    for module, text in (("ks_model", MODEL_SOURCE), ("ks_app", APP_SOURCE)):
        (source / module).mkdir(parents=True)
        (source / module / "__init__.py").write_bytes(text)
    with serve_index(root, wheels) as url:
        yield url, source


async def _resolved_wheels(index: str, work: Path) -> list[Path]:
    downloader = WheelDownloader(WheelSource(index))
    pins = await downloader.resolve(["ks-app"], {"numpy": "2.1.0"}, work / "pip")
    assert sorted(pins) == ["ks-app==1.0", "ks-model==1.1"]
    return await downloader.download(pins, work / "pip", work / "wheels")


async def test_a_resolved_chain_with_a_data_purelib_part_is_importable(
    chain_index: tuple[str, Path], tmp_path: Path
) -> None:
    wheels = await _resolved_wheels(chain_index[0], tmp_path)
    deps = install_wheels(wheels, tmp_path / "deps")
    assert sorted(p.name for p in deps.iterdir()) == [
        "ks_app",
        "ks_app-1.0.dist-info",
        "ks_model",
        "ks_model-1.1.dist-info",
    ]
    probe = "import ks_app; print(ks_app.Tripler().predict([[1, 2]]).tolist())"
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(deps)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[9.0]"


async def test_a_build_loads_a_class_that_needs_the_end_of_the_chain(
    start_builder: Any, chain_index: tuple[str, Path]
) -> None:
    index, source = chain_index
    builder = await start_builder(wheel_index_url=index)
    sys.path.insert(0, str(source))
    try:
        data = joblib_bytes(importlib.import_module("ks_app").Tripler())
    finally:
        sys.path.remove(str(source))
        sys.modules.pop("ks_app", None)
        sys.modules.pop("ks_model", None)
    # requirements.txt names A only: loading A's class needs B, found by the resolver.
    payload, _ = await builder.upload(data, requirements="ks-app==1.0\n")

    event = await builder.result(payload.version_id)

    assert event.type == VersionBuilt.event_type(), (event.data["stage"], event.data["reason"])
    plan = event.data["dependency_plan"]
    assert sorted(w["file"] for w in plan["wheels"]) == [
        "ks_app-1.0-py3-none-any.whl",
        "ks_model-1.1-py3-none-any.whl",
    ]
    smoke = event.data["signature"]["smoke"]
    assert smoke["ok"] is True and smoke["predict"]["sample"] == [0.0], smoke


def test_a_wheel_writing_outside_the_target_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "ks-escape", "1.0", files={"../escaped.py": b"x = 1\n"})
    with pytest.raises(BuildFailure) as failed:
        install_wheels([wheel], tmp_path / "deps")
    assert failed.value.stage is Stage.TRIAL
    assert "ks_escape-1.0-py3-none-any.whl cannot be installed" in failed.value.reason
    assert "outside of the target directory" in failed.value.reason
    assert not (tmp_path / "escaped.py").exists()


def test_wheels_too_large_to_unpack_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path, "ks-big", "1.0", files={"ks_big/data.bin": b"0" * 4096})
    with pytest.raises(BuildFailure, match="the wheels unpack to more than 1024 bytes"):
        install_wheels([wheel], tmp_path / "deps", max_bytes=1024)
    assert not (tmp_path / "deps").exists()
