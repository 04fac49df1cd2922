"""Scale to zero that holds (issue 12.5), through the gateway of the embedded platform: a
`min_replicas: 0` deployment goes to 0 ready replicas when idle, and the next prediction is
held while a replica starts and then answered with 200 - not a 503; when the tenant's other
deployments hold the whole quota, the request is refused at once (503 naming the quota), not
held until the hold timeout. (The hold's bounds - timeout, queue - answering 503 + Retry-After:
services/gateway/tests/test_load.py.)"""

from __future__ import annotations

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


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    env = {
        "KUBESERVE_AUTOSCALE_INTERVAL": "0.5",
        "KUBESERVE_PREDICT_HOLD_TIMEOUT": "60",
        "KUBESERVE_QUOTA_MAX_REPLICAS": "2",  # small, so another deployment can fill it
    }
    with embedded(tmp_path / "home", env) as running:
        yield running


def _wait(api: httpx.Client, dep: str, replicas: dict[str, int], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(f"/deployments/{dep}").json()
        if body["replicas"] == replicas:
            return body
        assert time.monotonic() < deadline, f"replicas {body['replicas']}, wanted {replicas}"
        time.sleep(0.2)


def test_an_idle_deployment_goes_to_zero_and_answers_the_next_request(
    platform: Platform, tmp_path: Path
) -> None:
    client = Client(platform.url)
    client.register("zero@example.com", "a scale to zero passphrase 5")
    client.login("zero@example.com", "a scale to zero passphrase 5")
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)
    model = client.create_model("iris")
    version = client.wait_for_version(
        model["id"], client.push(model["id"], path)["id"], timeout=180
    )
    headers = {"authorization": f"Bearer {client.credentials.access_token}"}
    with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=90) as api:
        created = api.post(
            "/deployments",
            json={
                "version_id": version["id"],
                "autoscaling": {
                    "min_replicas": 0,
                    "max_replicas": 2,
                    "target_concurrency": 2,
                    "scale_to_zero_after_s": 3,
                },
            },
        )
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
        _wait(api, dep, {"desired": 1, "ready": 1}, 180)
        first = api.post(f"/predict/{dep}", json={"instances": ROWS})
        assert first.status_code == 200, first.text

        idle = _wait(api, dep, {"desired": 0, "ready": 0}, 60)
        assert any(e["message"].startswith("scaled 1 -> 0") for e in idle["events"]), idle["events"]
        held = api.post(f"/predict/{dep}", json={"instances": ROWS})
        assert held.status_code == 200, held.text  # held while a replica started, not a 503
        assert held.json()["predictions"] == [0, 2]
        assert api.get(f"/deployments/{dep}").json()["replicas"]["ready"] >= 1

        # The tenant's other deployment takes the whole quota while this one is at zero: the
        # next request cannot wake it and says so at once (the hold timeout is 60 s).
        _wait(api, dep, {"desired": 0, "ready": 0}, 60)
        filler = api.post("/deployments", json={"version_id": version["id"], "replicas": 2})
        assert filler.status_code == 202, filler.text
        _wait(api, filler.json()["id"], {"desired": 2, "ready": 2}, 180)
        blocked = api.post(f"/predict/{dep}", json={"instances": ROWS})
        assert blocked.status_code == 503, blocked.text
        assert blocked.headers["retry-after"] == "10"
        error = blocked.json()["error"]
        assert error["code"] == "wake_blocked_by_quota"
        assert "quota allows 2" in error["message"], error  # not the hold's timeout
        # Room again: the same request is held and answered.
        assert api.delete(f"/deployments/{filler.json()['id']}").status_code == 202
        deadline = time.monotonic() + 60
        while (again := api.post(f"/predict/{dep}", json={"instances": ROWS})).status_code != 200:
            assert again.json()["error"]["code"] == "wake_blocked_by_quota", again.text
            assert time.monotonic() < deadline, again.text
            time.sleep(0.5)
        assert again.json()["predictions"] == [0, 2]
