"""Tenants see only their own models and versions (another tenant's is a 404); bad model input
gets a clear 4xx in the JSON error shape."""

from __future__ import annotations

import uuid

import pytest
from registry_helpers import Registry, model_files, payload_bytes


def assert_error(resp: object, status: int, code: str | None = None, mentions: str = "") -> None:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert mentions in body["error"]["message"]


async def test_another_tenant_gets_404_on_every_route_and_lists_only_its_own(
    registry: Registry, user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    async with registry.client(user_a) as a, registry.client(user_b) as b:
        model = (await a.post("/models", json={"name": "secret", "framework": "onnx"})).json()
        up = await a.post(f"/models/{model['id']}/versions", files=model_files(b"onnx!", "m.onnx"))
        assert up.status_code == 201
        version = up.json()
        await b.post("/models", json={"name": "mine", "framework": "onnx"})

        mid, vid = model["id"], version["id"]
        routes = [
            ("GET", f"/models/{mid}"),
            ("PATCH", f"/models/{mid}"),
            ("DELETE", f"/models/{mid}"),
            ("GET", f"/models/{mid}/versions"),
            ("GET", f"/models/{mid}/versions/v1"),
            ("GET", f"/models/{mid}/versions/{vid}"),
            ("GET", f"/models/{mid}/versions/v1/artifact"),
            ("GET", f"/models/{mid}/versions/{vid}/artifact?redirect=true"),
            ("DELETE", f"/models/{mid}/versions/v1"),
            ("DELETE", f"/models/{mid}/versions/{vid}"),
        ]
        for method, path in routes:
            kwargs = {"json": {"description": "pwned"}} if method == "PATCH" else {}
            resp = await b.request(method, path, **kwargs)
            assert_error(resp, 404, mentions="not found")
        resp = await b.post(f"/models/{mid}/versions", files=model_files(b"x", "m.onnx"))
        assert_error(resp, 404, "model_not_found")

        listed = (await b.get("/models")).json()
        assert [m["name"] for m in listed["items"]] == ["mine"]
        assert listed["total"] == 1
        # Tenant A's model and version are untouched.
        assert (await a.get(f"/models/{mid}")).json()["description"] == ""
        assert (await a.get(f"/models/{mid}/versions/v1")).status_code == 200
        # The same name is free for another tenant.
        assert (
            await b.post("/models", json={"name": "secret", "framework": "onnx"})
        ).status_code == 201

    async with registry.client() as anonymous:
        assert_error(await anonymous.get("/models"), 401)
        forged = {"x-kubeserve-principal": "not-a-token"}
        assert_error(await anonymous.get(f"/models/{mid}", headers=forged), 401)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Upper", "framework": "sklearn"},
        {"name": "under_score", "framework": "sklearn"},
        {"name": "-lead", "framework": "sklearn"},
        {"name": "trail-", "framework": "sklearn"},
        {"name": "x" * 64, "framework": "sklearn"},
        {"name": "", "framework": "sklearn"},
        {"name": "ok", "framework": "tensorflow"},
        {"name": "ok"},
        {"name": "ok", "framework": "onnx", "owner_id": str(uuid.uuid4())},
    ],
)
async def test_invalid_model_bodies_are_422_naming_the_field(
    registry: Registry, user_a: uuid.UUID, body: dict[str, str]
) -> None:
    async with registry.client(user_a) as client:
        resp = await client.post("/models", json=body)
        assert_error(resp, 422, "validation_error")
        assert (await client.get("/models")).json()["total"] == 0


async def test_duplicate_names_conflict_and_unknown_models_are_404(
    registry: Registry, user_a: uuid.UUID
) -> None:
    async with registry.client(user_a) as client:
        first = await client.post("/models", json={"name": "churn", "framework": "xgboost"})
        assert first.status_code == 201
        second = await client.post("/models", json={"name": "churn", "framework": "onnx"})
        assert_error(second, 409, "model_name_taken", "churn")
        other = (await client.post("/models", json={"name": "other", "framework": "onnx"})).json()
        rename = await client.patch(f"/models/{other['id']}", json={"name": "churn"})
        assert_error(rename, 409, "model_name_taken")
        bad_patch = await client.patch(f"/models/{other['id']}", json={"framework": "sklearn"})
        assert_error(bad_patch, 422)
        ok = await client.patch(
            f"/models/{other['id']}", json={"name": "renamed", "description": "better"}
        )
        assert ok.status_code == 200
        assert ok.json()["name"] == "renamed" and ok.json()["description"] == "better"

        unknown = uuid.uuid4()
        assert_error(await client.get(f"/models/{unknown}"), 404, "model_not_found")
        assert_error(
            await client.post(f"/models/{unknown}/versions", files=model_files(b"x", "m.onnx")),
            404,
            "model_not_found",
        )
        mid = first.json()["id"]
        assert_error(await client.get(f"/models/{mid}/versions/v7"), 404, "version_not_found")
        assert_error(await client.get(f"/models/{mid}/versions/latest"), 404, "version_not_found")
        assert_error(await client.get("/models/not-a-uuid"), 422)


async def test_lists_are_paginated_and_sorted(registry: Registry, user_a: uuid.UUID) -> None:
    async with registry.client(user_a) as client:
        for name in ("delta", "alpha", "charlie", "bravo", "echo"):
            assert (
                await client.post("/models", json={"name": name, "framework": "onnx"})
            ).status_code == 201
        page = (await client.get("/models", params={"sort": "name", "limit": 2})).json()
        assert [m["name"] for m in page["items"]] == ["alpha", "bravo"]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 0)
        page = (
            await client.get("/models", params={"sort": "name", "limit": 2, "offset": 4})
        ).json()
        assert [m["name"] for m in page["items"]] == ["echo"]
        newest = (await client.get("/models", params={"sort": "-created_at"})).json()
        assert [m["name"] for m in newest["items"]] == [
            "echo",
            "bravo",
            "charlie",
            "alpha",
            "delta",
        ]
        assert_error(await client.get("/models", params={"sort": "owner_id"}), 422)
        assert_error(await client.get("/models", params={"limit": 0}), 422)
        assert_error(await client.get("/models", params={"limit": 1000}), 422)

        mid = newest["items"][0]["id"]
        for i in range(3):
            resp = await client.post(
                f"/models/{mid}/versions", files=model_files(payload_bytes(100, i), "m.onnx")
            )
            assert resp.status_code == 201
        versions = (
            await client.get(f"/models/{mid}/versions", params={"sort": "version", "limit": 2})
        ).json()
        assert [v["version_tag"] for v in versions["items"]] == ["v1", "v2"]
        assert versions["total"] == 3
        default = (await client.get(f"/models/{mid}/versions")).json()
        assert [v["version_tag"] for v in default["items"]] == ["v3", "v2", "v1"]
