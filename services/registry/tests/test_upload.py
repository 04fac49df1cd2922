"""Uploads end to end on real PostgreSQL, RabbitMQ and S3 (moto): bytes stored with the right
sha256, one VersionUploaded per version, gapless tags under concurrency, nothing half-stored."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable

import httpx
from kubeserve_common.events import CloudEvent
from kubeserve_common.events.catalog import VersionUploaded
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from registry_helpers import Registry, model_files, payload_bytes

MIB = 1024 * 1024


async def create_model(
    client: httpx.AsyncClient, name: str = "iris", framework: str = "sklearn"
) -> dict[str, object]:
    resp = await client.post("/models", json={"name": name, "framework": framework})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_upload_stores_the_object_and_publishes_exactly_one_event(
    registry: Registry,
    s3: S3ArtifactStore,
    user_a: uuid.UUID,
    rabbit_bus_factory: Callable[..., RabbitMQBus],
) -> None:
    listener = rabbit_bus_factory("listener")
    await listener.connect()
    seen: list[CloudEvent] = []

    async def on_uploaded(event: CloudEvent) -> None:
        seen.append(event)

    await listener.subscribe(
        Subscription(
            listener.topology.queue("listener", "uploads"), (VersionUploaded.event_type(),)
        ),
        on_uploaded,
    )
    data = payload_bytes(12 * MIB + 123)  # more than one 8 MiB part: a real multipart upload
    async with registry.client(user_a) as client:
        model = await create_model(client)
        resp = await client.post(
            f"/models/{model['id']}/versions",
            files=model_files(data, "iris.joblib", b"scikit-learn==1.5.2\nnumpy\n"),
        )
        assert resp.status_code == 201, resp.text
        version = resp.json()
        assert version["version_tag"] == "v1"
        assert version["status"] == "Building"
        assert version["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert version["artifact"]["size"] == len(data)
        assert version["artifact"]["filename"] == "iris.joblib"
        assert version["requirements"] == "scikit-learn==1.5.2\nnumpy\n"

        # The object is in S3 under the documented layout, byte for byte.
        prefix = f"models/{user_a}/{model['id']}/v1/"
        keys = sorted(o.key for o in await s3.list_objects(""))
        assert keys == [prefix + "iris.joblib", prefix + "requirements.txt"]
        stored = await s3.read_bytes(prefix + "iris.joblib", max_bytes=64 * MIB)
        assert hashlib.sha256(stored).hexdigest() == version["artifact"]["sha256"]
        assert (
            version["artifact"]["uri"]
            == f"s3://{registry.settings.artifact_store_url[5:]}/{prefix}iris.joblib"
        )
        assert await s3.pending_multipart_uploads() == []

        # Readable back through the API, by tag and by id, and downloadable.
        for ref in ("v1", version["id"]):
            got = await client.get(f"/models/{model['id']}/versions/{ref}")
            assert got.status_code == 200
            assert got.json()["id"] == version["id"]
        download = await client.get(f"/models/{model['id']}/versions/v1/artifact")
        assert download.status_code == 200
        assert download.headers["x-kubeserve-sha256"] == version["artifact"]["sha256"]
        assert hashlib.sha256(download.content).hexdigest() == version["artifact"]["sha256"]
        redirect = await client.get(
            f"/models/{model['id']}/versions/v1/artifact", params={"redirect": "true"}
        )
        assert redirect.status_code == 307
        async with httpx.AsyncClient(timeout=30) as plain:
            presigned = await plain.get(redirect.headers["location"])
        assert hashlib.sha256(presigned.content).hexdigest() == version["artifact"]["sha256"]

        metrics = (await client.get("/metrics")).text
        assert 'kubeserve_registry_uploads_total{outcome="stored"}' in metrics
        assert "kubeserve_registry_uploaded_bytes_total" in metrics

        listed = (await client.get("/models")).json()
        assert listed["items"][0]["latest_version"]["version_tag"] == "v1"
        assert listed["items"][0]["latest_version"]["status"] == "Building"

    await wait_until(lambda: len(seen) >= 1, message="VersionUploaded on RabbitMQ")
    await asyncio.sleep(1.0)  # a duplicate would arrive within the relay's poll interval
    assert len(seen) == 1
    event = seen[0]
    payload = event.payload()
    assert isinstance(payload, VersionUploaded)
    assert payload.version_id == uuid.UUID(version["id"])
    assert payload.version_tag == "v1"
    assert payload.owner_id == user_a
    assert payload.framework == "sklearn"
    assert payload.sha256 == version["artifact"]["sha256"]
    assert payload.size == len(data)
    assert payload.artifact_uri == version["artifact"]["uri"]
    assert payload.filename == "iris.joblib"
    assert payload.requirements == "scikit-learn==1.5.2\nnumpy\n"
    assert event.tenantid == str(user_a)
    assert event.subject == f"models/{model['id']}/versions/v1"


async def test_twenty_concurrent_uploads_get_v1_to_v20_exactly_once(
    registry: Registry, s3: S3ArtifactStore, user_a: uuid.UUID
) -> None:
    async with registry.client(user_a) as client:
        model = await create_model(client, "concurrent", "onnx")

        async def upload(i: int) -> dict[str, object]:
            resp = await client.post(
                f"/models/{model['id']}/versions",
                files=model_files(payload_bytes(64 * 1024 + i, seed=i), f"m{i}.onnx"),
            )
            assert resp.status_code == 201, resp.text
            return resp.json()  # type: ignore[no-any-return]

        versions = await asyncio.gather(*(upload(i) for i in range(20)))
        tags = sorted(int(str(v["version_tag"])[1:]) for v in versions)
        assert tags == list(range(1, 21))
        # Each tag holds the file of the upload that got it (the move happened under the lock).
        for v in versions:
            key = f"models/{user_a}/{model['id']}/{v['version_tag']}/{v['artifact']['filename']}"  # type: ignore[index]
            data = await s3.read_bytes(key)
            assert hashlib.sha256(data).hexdigest() == v["artifact"]["sha256"]  # type: ignore[index]
        listed = (await client.get(f"/models/{model['id']}/versions", params={"limit": 100})).json()
        assert listed["total"] == 20
        assert [v["version_tag"] for v in listed["items"]] == [f"v{n}" for n in range(20, 0, -1)]
    objects = await s3.list_objects("")
    assert len(objects) == 20
    assert not [o for o in objects if o.key.startswith("staging/")]
