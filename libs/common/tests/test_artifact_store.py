"""One contract, two adapters: the local-directory store must behave like the S3 store (moto)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubeserve_common.errors import BadRequest
from kubeserve_common.storage import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreSettings,
    ArtifactTooLarge,
    create_artifact_store,
)
from kubeserve_common.storage.s3 import S3ArtifactStore

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_url: str
) -> AsyncIterator[ArtifactStore]:
    if request.param == "local":
        settings = ArtifactStoreSettings(dev_mode=True, artifact_store_url=tmp_path.as_uri())
    else:
        settings = ArtifactStoreSettings(
            dev_mode=True,
            artifact_store_url=f"s3://store-{uuid.uuid4().hex[:12]}",
            s3_endpoint_url=s3_url,
            s3_access_key_id="testing",  # type: ignore[arg-type]
            s3_secret_access_key="testing",  # type: ignore[arg-type]
            s3_part_size=5 * MIB,
        )
    the_store = create_artifact_store(settings)
    yield the_store
    await the_store.close()


async def gen(
    total: int, chunk: int = 256 * 1024, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise BadRequest("client went away")
        n = min(chunk, total - sent)
        yield bytes([sent // chunk % 251]) * n
        sent += n


def expected_sha(total: int, chunk: int = 256 * 1024) -> str:
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        digest.update(bytes([sent // chunk % 251]) * n)
        sent += n
    return digest.hexdigest()


@pytest.mark.parametrize("size", [0, 1000, 12 * MIB + 7])
async def test_put_stream_hashes_and_reads_back(store: ArtifactStore, size: int) -> None:
    stored = await store.put_stream("models/a/b/v1/model.bin", gen(size))
    assert stored.size == size
    assert stored.sha256 == expected_sha(size)
    assert store.key_for(stored.uri) == "models/a/b/v1/model.bin"
    length, chunks = await store.open("models/a/b/v1/model.bin")
    digest = hashlib.sha256()
    async for data in chunks:
        digest.update(data)
    assert length == size
    assert digest.hexdigest() == stored.sha256


async def test_over_limit_and_failing_sources_leave_nothing(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactTooLarge):
        await store.put_stream("staging/x/too-big.bin", gen(11 * MIB), max_bytes=10 * MIB)
    with pytest.raises(BadRequest):
        await store.put_stream("staging/x/broken.bin", gen(20 * MIB, fail_after=11 * MIB))
    assert await store.list_objects("") == []
    if isinstance(store, S3ArtifactStore):
        assert await store.pending_multipart_uploads() == []


async def test_move_delete_prefix_and_missing_keys(store: ArtifactStore) -> None:
    await store.put_bytes("staging/u/1/model.onnx", b"abc")
    uri = await store.move("staging/u/1/model.onnx", "models/u/m/v1/model.onnx")
    assert store.key_for(uri) == "models/u/m/v1/model.onnx"
    assert not await store.exists("staging/u/1/model.onnx")
    await store.put_bytes("models/u/m/v1/requirements.txt", b"numpy\n")
    await store.put_bytes("models/u/m2/v1/model.onnx", b"other model")
    assert await store.read_bytes("models/u/m/v1/model.onnx") == b"abc"
    assert await store.delete_prefix("models/u/m/") == 2
    assert [o.key for o in await store.list_objects("models/")] == ["models/u/m2/v1/model.onnx"]
    assert await store.stat("models/u/m/v1/model.onnx") is None
    with pytest.raises(ArtifactNotFound):
        await store.open("models/u/m/v1/model.onnx")
    await store.delete("models/u/m/v1/model.onnx")  # missing: not an error
    for bad in ("../etc/passwd", "/abs", "a//b", ""):
        with pytest.raises(ValueError):
            await store.put_bytes(bad, b"x")


async def test_presigned_url_serves_the_object(store: ArtifactStore) -> None:
    import httpx

    await store.put_bytes("models/u/m/v1/model.onnx", b"presigned bytes")
    url = await store.presigned_url("models/u/m/v1/model.onnx", expires_in=60)
    if isinstance(store, S3ArtifactStore):
        assert url is not None
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(url)
        assert resp.content == b"presigned bytes"
    else:
        assert url is None


async def test_leftovers_of_a_crash_are_cleaned(tmp_path: Path, s3_url: str) -> None:
    """Local: stale temporaries and staged files are swept when the store is first used.
    S3: a bucket the store creates gets lifecycle rules for unfinished uploads and staging."""
    import os
    import time

    from kubeserve_common.storage.local import LocalArtifactStore

    root = tmp_path / "artifacts"
    (root / ".tmp").mkdir(parents=True)
    (root / "staging" / "u" / "abc").mkdir(parents=True)
    old = time.time() - 2 * 86400
    for path in (root / ".tmp" / "x.part", root / "staging" / "u" / "abc" / "m.onnx"):
        path.write_bytes(b"debris")
        os.utime(path, (old, old))
    (root / "staging" / "u" / "fresh.onnx").write_bytes(b"an upload in progress")
    local = LocalArtifactStore(root)
    await local.put_bytes("models/u/m/v1/m.onnx", b"x")
    assert sorted(o.key for o in await local.list_objects("")) == [
        "models/u/m/v1/m.onnx",
        "staging/u/fresh.onnx",
    ]
    assert not list((root / ".tmp").iterdir())

    bucket = f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3 = S3ArtifactStore(
        bucket, endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"
    )
    try:
        await s3.ensure_bucket()
        client = await s3._s3()
        rules = (await client.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"]
        by_id = {r["ID"]: r for r in rules}
        assert by_id["kubeserve-abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 1
        }
        assert by_id["kubeserve-expire-staging"]["Filter"] == {"Prefix": "staging/"}
    finally:
        await s3.close()


async def test_one_chunk_larger_than_several_parts(store: ArtifactStore) -> None:
    data = bytes(range(256)) * (11 * MIB // 256) + b"tail"
    stored = await store.put_bytes("models/u/m/v1/big.bin", data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.read_bytes("models/u/m/v1/big.bin") == data
