"""The embedded mode: SQLite file, in-process bus, local artifact directory - the same code,
migrations applied on SQLite, uploads (also concurrent ones) and downloads working there."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from pathlib import Path

import httpx
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.testing.waiting import wait_until
from kubeserve_registry.bootstrap import bootstrap
from kubeserve_registry.main import create_app
from kubeserve_registry.settings import RegistrySettings
from registry_helpers import model_files, payload_bytes


async def test_embedded_mode_on_sqlite_and_a_local_directory(tmp_path: Path) -> None:
    settings = RegistrySettings(
        dev_mode=True,
        home=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
        broker_url="memory://",
        log_json=False,
    )
    assert settings.resolved_artifact_store_url() == (tmp_path / "artifacts").resolve().as_uri()
    user = uuid.uuid4()
    secret = settings.internal_secret.get_secret_value()
    headers = {PRINCIPAL_HEADER: encode_principal(Principal(user_id=user), secret, 600)}
    container = bootstrap(settings)
    with serve_app(create_app(container)) as url:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            assert (await client.get("/readyz")).status_code == 200
            model = (
                await client.post("/models", json={"name": "local", "framework": "onnx"})
            ).json()
            data = payload_bytes(3 * 1024 * 1024 + 5)
            resp = await client.post(
                f"/models/{model['id']}/versions",
                files=model_files(data, "net.onnx", b"onnxruntime\n"),
            )
            assert resp.status_code == 201, resp.text
            version = resp.json()
            assert version["version_tag"] == "v1" and version["status"] == "Building"
            assert version["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()
            directory = tmp_path / "artifacts" / "models" / str(user) / model["id"] / "v1"
            assert (directory / "net.onnx").read_bytes() == data
            assert (directory / "requirements.txt").read_text() == "onnxruntime\n"
            assert version["artifact"]["uri"] == (directory / "net.onnx").as_uri()

            async def one(i: int) -> str:
                r = await client.post(
                    f"/models/{model['id']}/versions",
                    files=model_files(payload_bytes(1000, i), f"n{i}.onnx"),
                )
                assert r.status_code == 201, r.text
                return str(r.json()["version_tag"])

            tags = await asyncio.gather(*(one(i) for i in range(8)))
            assert sorted(tags, key=lambda t: int(t[1:])) == [f"v{n}" for n in range(2, 10)]

            download = await client.get(f"/models/{model['id']}/versions/v1/artifact")
            assert download.content == data
            # No presigned URLs locally: the redirect flag falls back to streaming.
            fallback = await client.get(
                f"/models/{model['id']}/versions/v1/artifact", params={"redirect": "true"}
            )
            assert fallback.status_code == 200 and fallback.content == data

            resp = await client.post(f"/models/{model['id']}/versions", files=model_files(b""))
            assert resp.status_code == 422  # .joblib is not an onnx file
            resp = await client.post(
                f"/models/{model['id']}/versions", files=model_files(b"", "e.onnx")
            )
            assert resp.status_code == 400
            staging = tmp_path / "artifacts" / "staging"
            assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))
            assert not any((tmp_path / "artifacts" / ".tmp").iterdir())

            assert (await client.delete(f"/models/{model['id']}")).status_code == 204
            assert not (tmp_path / "artifacts" / "models" / str(user)).exists()

            def relayed() -> bool:
                with sqlite3.connect(tmp_path / "registry.db") as db:
                    rows = db.execute("SELECT event_type, sent_at FROM outbox").fetchall()
                uploaded = [r for r in rows if r[0] == "io.kubeserve.version.uploaded.v1"]
                return len(uploaded) == 9 and all(r[1] is not None for r in uploaded)

            await wait_until(
                relayed, message="nine VersionUploaded events relayed on the in-process bus"
            )
