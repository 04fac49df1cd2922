"""Bad uploads: each gets the JSON error shape, and nothing is half-stored - no version row, no
object, no unfinished multipart upload - and the next good upload still gets the next tag."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from registry_helpers import (
    Registry,
    connect,
    model_files,
    payload_bytes,
    read_response,
    request_head,
    send_until_answered,
)

MIB = 1024 * 1024
BOUNDARY = "----kubeserve-test-boundary"


def part_head(name: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def closing() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


async def assert_nothing_stored(
    client: httpx.AsyncClient, model_id: str, s3: S3ArtifactStore
) -> None:
    async def clean() -> bool:
        return not await s3.list_objects("") and not await s3.pending_multipart_uploads()

    await wait_until(clean, message="no object and no unfinished multipart upload in the bucket")
    versions = (await client.get(f"/models/{model_id}/versions")).json()
    assert versions["total"] == 0


def assert_error(resp: httpx.Response, status: int, code: str, mentions: str = "") -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    assert mentions in error["message"], error


@pytest.fixture
async def model(registry: Registry, user_a: uuid.UUID) -> dict[str, str]:
    async with registry.client(user_a) as client:
        resp = await client.post("/models", json={"name": "bad-input", "framework": "sklearn"})
        return resp.json()  # type: ignore[no-any-return]


async def test_each_bad_upload_is_refused_and_leaves_nothing(
    registry: Registry, s3: S3ArtifactStore, user_a: uuid.UUID, model: dict[str, str]
) -> None:
    url = f"/models/{model['id']}/versions"
    async with registry.client(user_a) as client:
        # No file at all: only a requirements file.
        resp = await client.post(url, files={"requirements": ("r.txt", b"numpy\n", "text/plain")})
        assert_error(resp, 422, "missing_field", "'model'")
        # A multipart body without any part, and a plain form field instead of a file.
        resp = await client.post(url, data={"note": "x"}, files={})
        assert resp.status_code in (415, 422), resp.text
        resp = await client.post(url, files={"model": (None, b"not a file")})
        assert_error(resp, 422, "invalid_model_file", "'model'")
        # Empty file.
        resp = await client.post(url, files=model_files(b"", "empty.joblib"))
        assert_error(resp, 400, "empty_file", "empty")
        # Wrong field names.
        resp = await client.post(url, files={"file": ("m.joblib", b"bytes", "application/x")})
        assert_error(resp, 422, "unexpected_field", "'file'")
        resp = await client.post(
            url, files={**model_files(b"bytes"), "requirement": ("r.txt", b"x", "text/plain")}
        )
        assert_error(resp, 422, "unexpected_field", "'requirement'")
        # Wrong file type for the framework, and path tricks in the name.
        resp = await client.post(url, files=model_files(b"bytes", "model.onnx"))
        assert_error(resp, 422, "invalid_model_file", ".joblib")
        resp = await client.post(url, files=model_files(b"bytes", "../../etc/requirements.txt"))
        assert_error(resp, 422, "invalid_model_file")
        # PyTorch files: refused up front with the way out, not accepted and failed later.
        for name in ("model.pt", "weights.pth"):
            resp = await client.post(url, files=model_files(b"PK\x03\x04torch", name))
            assert_error(resp, 422, "invalid_model_file", "torch.onnx.export")
        # Requirements: not UTF-8, and too large.
        resp = await client.post(url, files=model_files(b"bytes", requirements=b"\xff\xfe numpy"))
        assert_error(resp, 422, "invalid_requirements", "UTF-8")
        resp = await client.post(url, files=model_files(b"bytes", requirements=b"numpy\n" * 20_000))
        assert_error(resp, 413, "requirements_too_large")
        # Not multipart at all, and a truncated multipart body.
        resp = await client.post(url, json={"model": "bytes"})
        assert_error(resp, 415, "unsupported_media_type", "multipart/form-data")
        truncated = part_head("model", "m.joblib") + b"some bytes but no closing boundary"
        resp = await client.post(
            url,
            content=truncated,
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert_error(resp, 400, "bad_request", "multipart")

        await assert_nothing_stored(client, model["id"], s3)
        # Nothing consumed a version number: the next good upload is v1.
        resp = await client.post(url, files=model_files(b"finally good"))
        assert resp.status_code == 201
        assert resp.json()["version_tag"] == "v1"


async def test_pytorch_models_are_refused_at_creation_pointing_to_onnx(
    registry: Registry, user_a: uuid.UUID
) -> None:
    async with registry.client(user_a) as client:
        resp = await client.post("/models", json={"name": "torchy", "framework": "pytorch"})
        assert_error(resp, 422, "framework_not_served", "ONNX")
        listed = await client.get("/models")
        assert [m["name"] for m in listed.json()["items"]] == []
        custom = (await client.post("/models", json={"name": "c", "framework": "custom"})).json()
        resp = await client.post(
            f"/models/{custom['id']}/versions", files=model_files(b"PK\x03\x04", "m.pt")
        )
        assert_error(resp, 422, "invalid_model_file", "ONNX")


async def test_declared_oversize_is_refused_before_any_byte_is_read(
    start_registry: Callable[..., Registry], s3: S3ArtifactStore, user_a: uuid.UUID
) -> None:
    registry = start_registry(max_artifact_bytes=10 * MIB)
    async with registry.client(user_a) as client:
        model = (await client.post("/models", json={"name": "big", "framework": "onnx"})).json()
    sock = connect(registry.url)
    try:
        headers = {
            **registry.auth(user_a),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(1024 * MIB),
        }
        # Headers only: the answer must come without us sending a single body byte.
        sock.sendall(request_head("POST", f"/models/{model['id']}/versions", headers))
        status, body = read_response(sock)
    finally:
        sock.close()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    async with registry.client(user_a) as client:
        await assert_nothing_stored(client, model["id"], s3)


async def test_streamed_oversize_is_refused_while_streaming_and_aborted(
    start_registry: Callable[..., Registry], s3: S3ArtifactStore, user_a: uuid.UUID
) -> None:
    """No Content-Length (chunked): the server counts while streaming, answers 413 long before
    our 256 MiB generator is exhausted, and aborts the multipart upload it had started."""
    registry = start_registry(max_artifact_bytes=10 * MIB)
    async with registry.client(user_a) as client:
        model = (await client.post("/models", json={"name": "big", "framework": "onnx"})).json()
    total = 256 * MIB
    produced = 0

    def body() -> Iterator[bytes]:
        nonlocal produced
        head = part_head("model", "huge.onnx")
        yield b"%x\r\n%s\r\n" % (len(head), head)
        block = payload_bytes(64 * 1024)
        while produced < total:
            produced += len(block)
            yield b"%x\r\n%s\r\n" % (len(block), block)
        tail = closing()
        yield b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail)

    sock = connect(registry.url)
    try:
        headers = {
            **registry.auth(user_a),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Transfer-Encoding": "chunked",
        }
        sock.sendall(request_head("POST", f"/models/{model['id']}/versions", headers))
        sent, answered = await asyncio.to_thread(send_until_answered, sock, body())
        assert sent < total
        assert answered
        status, payload = read_response(sock)
    finally:
        sock.close()
    assert status == 413, payload
    assert json.loads(payload)["error"]["code"] == "payload_too_large"
    assert produced < total, "the server read the whole body before answering"
    async with registry.client(user_a) as client:
        await assert_nothing_stored(client, model["id"], s3)


async def test_client_disconnecting_mid_upload_leaves_no_version_and_no_object(
    registry: Registry, s3: S3ArtifactStore, user_a: uuid.UUID, model: dict[str, str]
) -> None:
    data = payload_bytes(12 * MIB)  # past the first 8 MiB part: a multipart upload is open
    head = part_head("model", "half.joblib")
    sock = connect(registry.url)
    try:
        headers = {
            **registry.auth(user_a),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(head) + 2 * len(data) + len(closing())),
        }
        sock.sendall(request_head("POST", f"/models/{model['id']}/versions", headers) + head)
        await asyncio.to_thread(sock.sendall, data)  # half of the declared body

        async def upload_in_progress() -> bool:
            return bool(await s3.pending_multipart_uploads())

        await wait_until(upload_in_progress, message="the server streaming into S3")
    finally:
        sock.close()  # gone mid-body
    async with registry.client(user_a) as client:
        await assert_nothing_stored(client, model["id"], s3)
        resp = await client.post(
            f"/models/{model['id']}/versions", files=model_files(b"complete", "whole.joblib")
        )
        assert resp.status_code == 201
        assert resp.json()["version_tag"] == "v1"


async def test_model_deleted_while_its_upload_streams_leaves_nothing(
    registry: Registry, s3: S3ArtifactStore, user_a: uuid.UUID, model: dict[str, str]
) -> None:
    data = payload_bytes(2 * MIB)
    head = part_head("model", "racing.joblib")
    sock = connect(registry.url)
    try:
        headers = {
            **registry.auth(user_a),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(head) + 2 * len(data) + len(closing())),
        }
        sock.sendall(request_head("POST", f"/models/{model['id']}/versions", headers) + head)
        await asyncio.to_thread(sock.sendall, data)
        async with registry.client(user_a) as client:
            assert (await client.delete(f"/models/{model['id']}")).status_code == 204
        await asyncio.to_thread(sock.sendall, data + closing())
        status, body = await asyncio.to_thread(read_response, sock)
    finally:
        sock.close()
    assert status == 404, body
    assert json.loads(body)["error"]["code"] == "model_not_found"
    assert await s3.list_objects("") == []
    assert await s3.pending_multipart_uploads() == []


async def test_json_routes_keep_a_small_body_limit(registry: Registry, user_a: uuid.UUID) -> None:
    async with registry.client(user_a) as client:
        resp = await client.post(
            "/models",
            json={"name": "big", "framework": "onnx", "description": "x" * (2 * MIB)},
        )
        assert_error(resp, 413, "payload_too_large")
        assert (await client.get("/models")).json()["total"] == 0


async def test_a_client_still_sending_gets_the_refusal(
    registry: Registry, s3: S3ArtifactStore, user_a: uuid.UUID, model: dict[str, str]
) -> None:
    """Refused at the part headers (wrong file type) while megabytes are still coming: the
    client still reads the 422 (not a connection reset), and the connection stays usable."""
    async with registry.client(user_a) as client:
        for _ in range(3):
            resp = await client.post(
                f"/models/{model['id']}/versions",
                files=model_files(payload_bytes(12 * MIB), "model.safetensors"),
            )
            assert_error(resp, 422, "invalid_model_file", ".joblib")
        await assert_nothing_stored(client, model["id"], s3)
