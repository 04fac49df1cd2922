"""The local backend's wheelhouse: a version's wheels, fetched from the artifact store (a real
S3 server over HTTP), installed once into the read-only directory its replicas import from."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubeserve_common.storage import ArtifactStore, create_artifact_store
from kubeserve_common.storage.settings import ArtifactStoreSettings
from kubeserve_common.testing.wheels import make_wheel
from kubeserve_deployer.backends.local.artifact_cache import ArtifactCache, ArtifactUnusable


@pytest.fixture
async def store(s3_url: str) -> AsyncIterator[ArtifactStore]:
    the_store = create_artifact_store(
        ArtifactStoreSettings(
            dev_mode=True,
            artifact_store_url=f"s3://wheelhouse-{uuid.uuid4().hex[:12]}",
            s3_endpoint_url=s3_url,
            s3_access_key_id="testing",  # type: ignore[arg-type]
            s3_secret_access_key="testing",  # type: ignore[arg-type]
        )
    )
    await the_store.ensure_bucket()
    yield the_store
    await the_store.close()


async def _publish(store: ArtifactStore, wheels: list[Path], folder: str) -> str:
    for wheel in wheels:
        await store.put_bytes(f"{folder}/{wheel.name}", wheel.read_bytes())
    return store.uri_for(f"{folder}/x")[:-1]


async def test_wheels_land_importable_including_their_purelib_data(
    store: ArtifactStore, tmp_path: Path
) -> None:
    app = make_wheel(
        tmp_path,
        "ks-app",
        "1.0",
        ("ks-model",),
        {"ks_app/__init__.py": b"from ks_model import K\n"},
    )
    model = make_wheel(
        tmp_path, "ks-model", "1.1", files={"ks_model-1.1.data/purelib/ks_model.py": b"K = 42\n"}
    )
    uri = await _publish(store, [app, model], "wheelhouses/u/m/v1")
    cache = ArtifactCache(store, tmp_path / "cache", timeout=30)

    site = await cache.fetch_wheelhouse(uri)

    imported = await asyncio.to_thread(
        subprocess.run,  # a fresh interpreter, as a replica imports it
        [sys.executable, "-c", "import ks_app; print(ks_app.K)"],
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.stdout.strip() == "42", imported.stderr
    assert not (site / "ks_model-1.1.data").exists()  # laid out as pip would, not unzipped
    assert not site.stat().st_mode & 0o222  # replicas read it, none writes
    assert await cache.fetch_wheelhouse(uri) == site  # installed once, then reused


async def test_a_wheel_escaping_its_directory_is_refused_and_nothing_is_kept(
    store: ArtifactStore, tmp_path: Path
) -> None:
    hostile = make_wheel(tmp_path, "ks-escape", "1.0", files={"../../escaped.py": b"x = 1\n"})
    uri = await _publish(store, [hostile], "wheelhouses/u/m/v2")
    cache = ArtifactCache(store, tmp_path / "cache", timeout=30)

    with pytest.raises(
        ArtifactUnusable, match=re.escape("ks_escape-1.0-py3-none-any.whl cannot be installed")
    ):
        await cache.fetch_wheelhouse(uri)

    left = await asyncio.to_thread(lambda: [p.name for p in tmp_path.rglob("*")])
    assert "escaped.py" not in left
    assert "site" not in left  # no half-installed wheelhouse is served


async def test_a_corrupt_wheel_is_refused_by_name(store: ArtifactStore, tmp_path: Path) -> None:
    broken = tmp_path / "ks_broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip archive")
    uri = await _publish(store, [broken], "wheelhouses/u/m/v3")
    cache = ArtifactCache(store, tmp_path / "cache", timeout=30)

    with pytest.raises(
        ArtifactUnusable, match=re.escape("ks_broken-1.0-py3-none-any.whl is not a readable")
    ):
        await cache.fetch_wheelhouse(uri)
