"""A model that needs a package the platform lacks: its requirements.txt names it, the builder
fetches its wheel into the version's wheelhouse (from a local index, never the internet), and
the deployed replica imports it from there - the class exists nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubeserve_sdk import Client

from services.builder.tests.builder_helpers import (
    PKG_NAME,
    PKG_VERSION,
    make_test_wheel,
    with_package,
)
from tests.e2e.platform import Platform, embedded


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Platform, Path]]:
    wheel, unpacked = make_test_wheel(tmp_path / "index")
    env = {"KUBESERVE_WHEEL_FIND_LINKS": str(wheel.parent)}
    with embedded(tmp_path / "home", env=env) as running:
        yield running, unpacked


def test_a_model_whose_class_comes_from_its_wheelhouse(
    platform: tuple[Platform, Path], tmp_path: Path
) -> None:
    running, unpacked = platform
    model_file = tmp_path / "doubler.joblib"
    model_file.write_bytes(with_package(unpacked, "Doubler"))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{PKG_NAME}=={PKG_VERSION}\n")

    client = Client(running.url)
    client.register("wheels@example.com", "a wheel passphrase 3")
    client.login("wheels@example.com", "a wheel passphrase 3")
    model = client.create_model("doubler", framework="sklearn")
    version = client.push(model["id"], model_file, requirements)
    version = client.wait_for_version(model["id"], version["id"], timeout=180)
    assert version["status"] == "Ready", version
    assert version["dependency_plan"]["to_install"] == [f"{PKG_NAME}=={PKG_VERSION}"]

    deployment = client.wait_for_deployment(client.deploy(version["id"])["id"], timeout=180)
    assert deployment["status"] == "Running", deployment
    result = client.predict(deployment["id"], {"instances": [[1, 2], [3, 4]]})
    assert result["predictions"] == [6.0, 14.0]
