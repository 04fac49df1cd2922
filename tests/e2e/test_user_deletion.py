"""Issue 15 item 7 through the embedded platform's gateway: an administrator deletes a user; the
user's deployment stops (its replica gone, `DeploymentDeleted` recorded once) and its predictions
stop answering, to the user's API key and session alike, while another tenant keeps serving."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from kubeserve_sdk import Client
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import Platform, embedded

ROWS = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]
ADMIN = "root@example.com"
PASS = "a user deletion passphrase 7"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with embedded(tmp_path / "home", {"KUBESERVE_ADMIN_EMAILS": ADMIN}) as running:
        yield running


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def _running_deployment(platform: Platform, email: str, model_path: Path) -> tuple[Client, str]:
    client = Client(platform.url)
    client.register(email, PASS)
    client.login(email, PASS)
    model = client.create_model("iris")
    version = client.wait_for_version(
        model["id"], client.push(model["id"], model_path)["id"], timeout=180
    )
    headers = {"authorization": f"Bearer {client.credentials.access_token}"}
    with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=90) as api:
        created = api.post("/deployments", json={"version_id": version["id"]})
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
        _until(
            lambda: api.get(f"/deployments/{dep}").json()["replicas"]["ready"] == 1,
            180,
            "deployment ready",
        )
    return client, dep


def _deployment_row(platform: Platform, dep: str) -> tuple[Any, ...]:
    with sqlite3.connect(platform.home / "db" / "deployer.db") as db:
        row = db.execute(
            "SELECT deleted_at, ready_replicas FROM deployments WHERE id = ?",
            (dep.replace("-", ""),),
        ).fetchone()
        deleted = db.execute(
            "SELECT count(*) FROM deployment_events WHERE deployment_id = ? AND kind = 'deleted'",
            (dep.replace("-", ""),),
        ).fetchone()
    assert row is not None, "deployment row not found"
    return (*row, deleted[0])


def test_admin_deletes_a_user_and_their_deployment_stops(
    platform: Platform, tmp_path: Path
) -> None:
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)
    admin = Client(platform.url)
    admin.register(ADMIN, PASS)
    admin.login(ADMIN, PASS)
    victim, dep = _running_deployment(platform, "victim@example.com", path)
    other, kept = _running_deployment(platform, "other@example.com", path)

    user_headers = {"authorization": f"Bearer {victim.credentials.access_token}"}
    with httpx.Client(base_url=f"{platform.url}/api/v1", timeout=60) as api:
        key = api.post("/auth/api-keys", json={"name": "app"}, headers=user_headers)
        assert key.status_code == 201, key.text
        key_headers = {"x-api-key": key.json()["key"]}
        for headers in (user_headers, key_headers):
            answered = api.post(f"/predict/{dep}", json={"instances": ROWS}, headers=headers)
            assert answered.status_code == 200, answered.text
        victim_id = api.get("/auth/me", headers=user_headers).json()["id"]
        as_admin = {"authorization": f"Bearer {admin.credentials.access_token}"}
        # Not an admin: refused, and nothing happens.
        other_headers = {"authorization": f"Bearer {other.credentials.access_token}"}
        refused = api.delete(f"/auth/users/{victim_id}", headers=other_headers)
        assert refused.status_code == 403, refused.text

        deleted = api.delete(f"/auth/users/{victim_id}", headers=as_admin)
        assert deleted.status_code == 204, deleted.text

        # Within one event delivery (the bound: 60 s), key and session alike.
        for headers in (key_headers, user_headers):
            _until(
                lambda h=headers: (
                    api.post(f"/predict/{dep}", json={"instances": ROWS}, headers=h).status_code
                    == 401
                ),
                60,
                "the deleted user's credential refused",
            )
        # The deployment itself is stopped, once: its replica is gone and it is deleted.
        row = _until(
            lambda: (r := _deployment_row(platform, dep))[0] is not None and r, 60, "deleted"
        )
        assert row[1] == 0 and row[2] == 1
        # The other tenant still predicts.
        kept_answer = api.post(f"/predict/{kept}", json={"instances": ROWS}, headers=other_headers)
        assert kept_answer.status_code == 200, kept_answer.text
        assert _deployment_row(platform, kept)[0] is None
        time.sleep(1.0)
        assert _deployment_row(platform, dep)[2] == 1  # still one deletion
