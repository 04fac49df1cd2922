"""The wheelhouse is resolved by pip's own resolver against the base image's packages (as
metadata stubs at the image's versions), from a real PEP 503 index over HTTP on 127.0.0.1:
what the image has is never fetched, transitive dependencies are pinned exactly, the resolver
backtracks past a release whose dependencies the image cannot meet, and an impossible set is
pip's clear error naming the package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubeserve_builder.adapters.wheels import WheelDownloader, WheelDownloadError, WheelSource

sys.path.insert(0, str(Path(__file__).parent))
from builder_helpers import make_wheel, serve_index

BASE = {"numpy": "2.1.0", "scikit-learn": "1.5.2"}  # what the image has (not on the index)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("resolution-index")
    wheels = [
        # needs something the image has, and a second package at a recent enough version
        make_wheel(root, "ks-app", "1.0", requires=("numpy>=1.20", "ks-helper>=2")),
        make_wheel(root, "ks-helper", "1.0"),
        make_wheel(root, "ks-helper", "2.0", requires=("ks-leaf",)),
        make_wheel(root, "ks-leaf", "0.3"),
        # the newest release needs a numpy the image cannot have: the resolver must take 1.0
        make_wheel(root, "ks-picky", "1.0", requires=("numpy>=1.20",)),
        make_wheel(root, "ks-picky", "2.0", requires=("numpy<1",)),
        # no release fits the image's numpy
        make_wheel(root, "ks-stuck", "1.0", requires=("numpy<1",)),
    ]
    with serve_index(root, wheels) as url:
        yield url


async def test_transitive_dependencies_are_pinned_and_the_image_is_not_fetched(
    index: str, tmp_path: Path
) -> None:
    pins = await WheelDownloader(WheelSource(index)).resolve(["ks-app"], BASE, tmp_path / "pip")
    assert sorted(pins) == ["ks-app==1.0", "ks-helper==2.0", "ks-leaf==0.3"]  # no numpy
    wheels = await WheelDownloader(WheelSource(index)).download(
        pins, tmp_path / "pip", tmp_path / "wheels"
    )
    assert sorted(w.name for w in wheels) == [
        "ks_app-1.0-py3-none-any.whl",
        "ks_helper-2.0-py3-none-any.whl",
        "ks_leaf-0.3-py3-none-any.whl",
    ]


async def test_the_resolver_backtracks_past_a_release_the_image_cannot_hold(
    index: str, tmp_path: Path
) -> None:
    pins = await WheelDownloader(WheelSource(index)).resolve(["ks-picky"], BASE, tmp_path / "p")
    assert pins == ["ks-picky==1.0"]


async def test_an_impossible_set_is_pips_error_naming_the_package(
    index: str, tmp_path: Path
) -> None:
    with pytest.raises(WheelDownloadError) as failed:
        await WheelDownloader(WheelSource(index)).resolve(["ks-stuck"], BASE, tmp_path / "p")
    message = str(failed.value)
    assert message.startswith("pip resolve failed")
    assert "numpy<1 (from ks-stuck)" in message, message


async def test_a_version_replacing_an_image_package_gets_it_from_the_index(
    index: str, tmp_path: Path
) -> None:
    # The plan drops a package the version pins differently from the image's copy: then it
    # must come from the index (here it is not there: a clear error, not the image's copy).
    without_numpy = {k: v for k, v in BASE.items() if k != "numpy"}
    with pytest.raises(WheelDownloadError, match="numpy"):
        await WheelDownloader(WheelSource(index)).resolve(["ks-app"], without_numpy, tmp_path / "p")
