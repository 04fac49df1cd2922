"""The `autoscaling` object of POST/PATCH/GET /deployments: stored and shown beside `replicas`,
plain `replicas` still a fixed count, clear 422s for bad settings and a 409 for a maximum beyond
the tenant quota. (A backend that runs nothing: no processes are needed.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from deployer_helpers import Deployer, IdleBackend, Seeder


@pytest.fixture
async def idle(start_deployer: Callable[..., Any]) -> Deployer:
    return await start_deployer(backend=IdleBackend())


async def _version(deployer: Deployer, seeder: Seeder, owner: uuid.UUID) -> str:
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await deployer.wait_version(owner, version.version_id)
    return str(version.version_id)


SETTINGS = {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 2}


async def test_autoscaling_settings_round_trip(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _version(idle, seeder, owner)
    async with idle.client(owner) as api:
        created = await api.post(
            "/deployments", json={"version_id": version, "autoscaling": SETTINGS}
        )
        assert created.status_code == 202, created.text
        body = created.json()
        assert body["autoscaling"] == {**SETTINGS, "scale_to_zero_after_s": None}
        assert body["replicas"] == {"desired": 1, "ready": 0}
        dep = body["id"]

        changed = await api.patch(
            f"/deployments/{dep}",
            json={"autoscaling": {"min_replicas": 2, "max_replicas": 4, "target_concurrency": 1.5}},
        )
        assert changed.status_code == 202, changed.text
        shown = (await api.get(f"/deployments/{dep}")).json()
        assert shown["autoscaling"]["min_replicas"] == 2
        assert shown["autoscaling"]["target_concurrency"] == 1.5
        assert shown["replicas"]["desired"] == 2  # raised to the new minimum at once
        assert any("autoscaling 2..4 replicas" in e["message"] for e in shown["events"])

        fixed = await api.patch(f"/deployments/{dep}", json={"replicas": 1})
        assert fixed.status_code == 202, fixed.text
        shown = (await api.get(f"/deployments/{dep}")).json()
        assert shown["autoscaling"] is None
        assert shown["replicas"]["desired"] == 1

        plain = await api.post("/deployments", json={"version_id": version, "replicas": 2})
        assert plain.status_code == 202, plain.text
        assert plain.json()["autoscaling"] is None
        assert plain.json()["replicas"]["desired"] == 2

        to_zero = await api.post(
            "/deployments",
            json={
                "version_id": version,
                "autoscaling": {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after_s": 10},
            },
        )
        assert to_zero.status_code == 202, to_zero.text
        # It starts with one replica and goes to zero only when idle.
        assert to_zero.json()["replicas"]["desired"] == 1


@pytest.mark.parametrize(
    ("autoscaling", "words"),
    [
        ({"min_replicas": 3, "max_replicas": 2}, "must not exceed max_replicas"),
        ({"target_concurrency": 0}, "greater than 0"),
        ({"target_concurrency": "2"}, "target_concurrency"),
        ({"min_replicas": 1, "scale_to_zero_after_s": 10}, "needs min_replicas 0"),
        ({"max_replicas": 0}, "max_replicas"),
        ({"max_replica": 3}, "max_replica"),
    ],
)
async def test_bad_settings_are_clear_422s(
    idle: Deployer, seeder: Seeder, autoscaling: dict[str, Any], words: str
) -> None:
    owner = uuid.uuid4()
    version = await _version(idle, seeder, owner)
    async with idle.client(owner) as api:
        response = await api.post(
            "/deployments", json={"version_id": version, "autoscaling": autoscaling}
        )
        assert response.status_code == 422, response.text
        assert words in response.text, response.text
        assert set(response.json()) == {"error"}
        both = await api.post(
            "/deployments", json={"version_id": version, "replicas": 2, "autoscaling": SETTINGS}
        )
        assert both.status_code == 422 and "not both" in both.text, both.text
        assert (await api.get("/deployments")).json()["total"] == 0


async def test_max_beyond_the_quota_is_a_409(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    version = await _version(idle, seeder, owner)
    async with idle.client(owner) as api:
        too_many = {"min_replicas": 1, "max_replicas": 6, "target_concurrency": 2}
        response = await api.post(
            "/deployments", json={"version_id": version, "autoscaling": too_many}
        )
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "quota_exceeded"
        assert "max_replicas 6 is beyond your quota: at most 5" in error["message"]
        dep = (await api.post("/deployments", json={"version_id": version})).json()["id"]
        patched = await api.patch(f"/deployments/{dep}", json={"autoscaling": too_many})
        assert patched.status_code == 409, patched.text
        assert (await api.get(f"/deployments/{dep}")).json()["autoscaling"] is None
