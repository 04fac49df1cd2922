"""Bad input gets a clear 4xx JSON error and changes nothing: unknown, foreign or not-Ready
versions, bad replica counts, the quota, malformed bodies, other tenants' deployments and the
internal route's authentication. (A backend that runs nothing: no processes are needed.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from deployer_helpers import Deployer, IdleBackend, Seeder, Version
from kubeserve_common.events.catalog import VersionBuildFailed
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal
from kubeserve_common.security.tokens import issue_internal_token
from kubeserve_common.testing.waiting import wait_until


@pytest.fixture
async def idle(start_deployer: Callable[..., Any]) -> Deployer:
    return await start_deployer(backend=IdleBackend())


async def _ready(deployer: Deployer, seeder: Seeder, owner: uuid.UUID) -> Version:
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await deployer.wait_version(owner, version.version_id)
    return version


def _error(response: Any, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    if code:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


async def test_versions_that_cannot_be_deployed(idle: Deployer, seeder: Seeder) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    bobs = await _ready(idle, seeder, bob)
    model_id = await seeder.model(alice)
    building = await seeder.version(alice, model_id, "v1", built=False)
    failed = await seeder.version(alice, model_id, "v2", built=False)
    await seeder.bus.publish(
        CloudEvent.create(
            VersionBuildFailed(
                model_id=model_id,
                version_id=failed.version_id,
                version_tag="v2",
                owner_id=alice,
                stage="trial_load",
                reason="could not unpickle",
            ),
            service="builder",
        )
    )

    async with idle.client(alice) as api:
        unknown = await api.post("/deployments", json={"version_id": str(uuid.uuid4())})
        assert "not found" in _error(unknown, 404, "not_found")
        foreign = await api.post("/deployments", json={"version_id": str(bobs.version_id)})
        # Another tenant's version is indistinguishable from an unknown one.
        assert _error(foreign, 404, "not_found") == f"version {bobs.version_id} not found"

        async def refused(version: Version, words: str) -> bool:
            response = await api.post("/deployments", json={"version_id": str(version.version_id)})
            return response.status_code == 409 and words in response.text

        await wait_until(lambda: refused(building, "still building"), message="409 building")
        await wait_until(lambda: refused(failed, "could not unpickle"), message="409 failed")
        response = await api.post("/deployments", json={"version_id": str(failed.version_id)})
        assert "failed to build" in _error(response, 409, "version_not_ready")
        assert (await api.get("/deployments")).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"replicas": 0},
        {"replicas": -1},
        {"replicas": "2"},
        {"replicas": 2.5},
        {"replicas": True},
        {"replicas": None},
        {"replicas": 1, "colour": "blue"},
        {"name": "Not A Valid Name!"},
        {"version_id": "not-a-uuid"},
        {},
    ],
)
async def test_malformed_create_bodies(
    idle: Deployer, seeder: Seeder, body: dict[str, Any]
) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    payload = {"version_id": str(version.version_id), **body}
    if body == {}:
        payload = {}
    async with idle.client(owner) as api:
        response = await api.post("/deployments", json=payload)
        message = _error(response, 422, "validation_error")
        assert "invalid request" in message
        assert (await api.get("/deployments")).json()["total"] == 0


async def test_non_json_and_wrong_types(idle: Deployer) -> None:
    async with idle.client(uuid.uuid4()) as api:
        response = await api.post(
            "/deployments", content=b"{not json", headers={"content-type": "application/json"}
        )
        _error(response, 422, "validation_error")
        response = await api.post("/deployments", json=[1, 2, 3])
        _error(response, 422, "validation_error")
        _error(await api.get("/deployments/not-a-uuid"), 422, "validation_error")
        _error(await api.get("/deployments?limit=0"), 422, "validation_error")
        _error(await api.get("/deployments?limit=1000"), 422, "validation_error")


async def test_unauthenticated(idle: Deployer) -> None:
    async with idle.client() as api:
        _error(await api.get("/deployments"), 401, "unauthorized")
        _error(await api.post("/deployments", json={}), 401, "unauthorized")
        forged = encode_principal(Principal(user_id=uuid.uuid4()), "not-the-secret", 60)
        response = await api.get("/deployments", headers={PRINCIPAL_HEADER: forged})
        _error(response, 401, "unauthorized")


async def test_replica_quota(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    vid = str(version.version_id)
    async with idle.client(owner) as api:
        too_many = await api.post("/deployments", json={"version_id": vid, "replicas": 6})
        message = _error(too_many, 409, "quota_exceeded")
        assert "5 replicas" in message and "0 replicas" in message
        assert too_many.json()["error"]["details"]["quota"] == {
            "replicas": 5,
            "cpu": 2.0,
            "memory_mib": 4096,
        }

        first = await api.post("/deployments", json={"version_id": vid, "replicas": 3})
        assert first.status_code == 202, first.text
        second = await api.post("/deployments", json={"version_id": vid, "replicas": 3})
        message = _error(second, 409, "quota_exceeded")
        assert "3 replicas" in message and "in use" in message
        assert second.json()["error"]["details"]["usage"]["replicas"] == 3
        ok = await api.post("/deployments", json={"version_id": vid, "replicas": 2})
        assert ok.status_code == 202, ok.text

        # Scaling counts too (the deployment's own replicas are not counted twice).
        dep = first.json()["id"]
        _error(await api.patch(f"/deployments/{dep}", json={"replicas": 4}), 409, "quota_exceeded")
        assert (await api.patch(f"/deployments/{dep}", json={"replicas": 2})).status_code == 202
        assert (await api.patch(f"/deployments/{dep}", json={"replicas": 3})).status_code == 202
        # Deleting frees the quota at once.
        assert (await api.delete(f"/deployments/{dep}")).status_code == 202
        again = await api.post("/deployments", json={"version_id": vid, "replicas": 3})
        assert again.status_code == 202, again.text

    # Another user's usage is their own.
    other = uuid.uuid4()
    theirs = await _ready(idle, seeder, other)
    async with idle.client(other) as api:
        response = await api.post(
            "/deployments", json={"version_id": str(theirs.version_id), "replicas": 5}
        )
        assert response.status_code == 202, response.text


async def test_cpu_quota(start_deployer: Callable[..., Any], seeder: Seeder) -> None:
    deployer = await start_deployer(backend=IdleBackend(), replica_cpu=0.75)
    owner = uuid.uuid4()
    version = await _ready(deployer, seeder, owner)
    async with deployer.client(owner) as api:
        response = await api.post(
            "/deployments", json={"version_id": str(version.version_id), "replicas": 3}
        )
        message = _error(response, 409, "quota_exceeded")
        assert "(CPU)" in message and "2.25 CPU" in message and "0.75 CPU each" in message
        ok = await api.post(
            "/deployments", json={"version_id": str(version.version_id), "replicas": 2}
        )
        assert ok.status_code == 202, ok.text


async def test_other_tenants_deployments_are_404(idle: Deployer, seeder: Seeder) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    version = await _ready(idle, seeder, alice)
    async with idle.client(alice) as api:
        created = await api.post("/deployments", json={"version_id": str(version.version_id)})
        dep = created.json()["id"]
    async with idle.client(bob) as api:
        _error(await api.get(f"/deployments/{dep}"), 404, "not_found")
        _error(await api.patch(f"/deployments/{dep}", json={"replicas": 2}), 404, "not_found")
        _error(await api.post(f"/deployments/{dep}/rollback", json={}), 404, "not_found")
        _error(await api.delete(f"/deployments/{dep}"), 404, "not_found")
        assert (await api.get("/deployments")).json()["items"] == []
        # Bob cannot move Alice's deployment to his version, nor his to hers.
        theirs = await _ready(idle, seeder, bob)
        mine = await api.post("/deployments", json={"version_id": str(theirs.version_id)})
        response = await api.patch(
            f"/deployments/{mine.json()['id']}", json={"version_id": str(version.version_id)}
        )
        _error(response, 404, "not_found")
    async with idle.client(alice) as api:
        body = (await api.get(f"/deployments/{dep}")).json()
        assert body["replicas"]["desired"] == 1 and body["status"] in ("Pending", "Deploying")


async def test_update_and_rollback_errors(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    other_model = await _ready(idle, seeder, owner)
    async with idle.client(owner) as api:
        dep = (await api.post("/deployments", json={"version_id": str(version.version_id)})).json()
        url = f"/deployments/{dep['id']}"
        _error(await api.patch(url, json={}), 422, "validation_error")
        _error(await api.patch(url, json={"replicas": 0}), 422, "validation_error")
        response = await api.patch(url, json={"version_id": str(other_model.version_id)})
        assert "another model" in _error(response, 422, "validation_error")
        response = await api.post(f"{url}/rollback", json={})
        assert "no revision before 1" in _error(response, 409, "conflict")
        _error(await api.post(f"{url}/rollback", json={"revision": 7}), 404, "not_found")
        _error(await api.post(f"{url}/rollback", json={"revision": 1}), 409, "conflict")
        _error(await api.post(f"{url}/rollback", json={"revision": 0}), 422, "validation_error")
        assert (await api.delete(url)).status_code == 202
        # Changing a deployment being deleted (409) or deleted (404) is refused.
        response = await api.patch(url, json={"replicas": 2})
        assert response.status_code in (404, 409), response.text
        assert response.json()["error"]["code"] in ("not_found", "conflict")


async def test_internal_route_authentication(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    async with idle.client(owner) as api:
        dep = (await api.post("/deployments", json={"version_id": str(version.version_id)})).json()
    path = f"/internal/deployments/{dep['id']}/route"
    async with idle.client() as plain:
        _error(await plain.get(path), 401, "unauthorized")
        user_token = issue_internal_token(idle.secret, subject=str(owner), claims={})
        response = await plain.get(path, headers={"Authorization": f"Bearer {user_token}"})
        _error(response, 403, "forbidden")
        forged = issue_internal_token("wrong-secret", subject="service:gateway", claims={})
        response = await plain.get(path, headers={"Authorization": f"Bearer {forged}"})
        _error(response, 401, "unauthorized")
        # A principal header is no substitute for a service token.
        response = await plain.get(
            path, headers={PRINCIPAL_HEADER: encode_principal(Principal(owner), idle.secret)}
        )
        _error(response, 401, "unauthorized")
    ok = await idle.route(dep["id"])
    assert ok.status_code == 200
    assert ok.json() == {
        "deployment_id": dep["id"],
        "owner_id": str(owner),
        "status": ok.json()["status"],
        "revision": 1,
        "ready_replicas": 0,
        "endpoints": [],
        "scaled_to_zero": False,  # a fixed count never is
        "wake_blocked": None,
    }
    _error(await idle.route(uuid.uuid4()), 404, "not_found")


async def test_listing_is_paginated_newest_first(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    async with idle.client(owner) as api:
        ids = []
        for i in range(3):
            created = await api.post(
                "/deployments", json={"version_id": str(version.version_id), "name": f"d{i}"}
            )
            ids.append(created.json()["id"])
        first = (await api.get("/deployments?limit=2")).json()
        second = (await api.get("/deployments?limit=2&offset=2")).json()
    assert first["total"] == second["total"] == 3
    assert [d["id"] for d in first["items"] + second["items"]] == ids[::-1]
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)


async def test_api_key_scoped_to_one_deployment(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _ready(idle, seeder, owner)
    async with idle.client(owner) as api:
        one = (await api.post("/deployments", json={"version_id": str(version.version_id)})).json()
        two = (await api.post("/deployments", json={"version_id": str(version.version_id)})).json()
    key = Principal(user_id=owner, auth="api_key", deployment_scope=frozenset({one["id"]}))
    headers = {PRINCIPAL_HEADER: encode_principal(key, idle.secret, 60)}
    async with idle.client() as api:
        listed = (await api.get("/deployments", headers=headers)).json()
        assert [d["id"] for d in listed["items"]] == [one["id"]] and listed["total"] == 1
        assert (await api.get(f"/deployments/{one['id']}", headers=headers)).status_code == 200
        _error(await api.get(f"/deployments/{two['id']}", headers=headers), 404, "not_found")
        response = await api.post(
            "/deployments", json={"version_id": str(version.version_id)}, headers=headers
        )
        _error(response, 403, "forbidden")
