"""The main job, end to end through the public HTTP API (the SDK the CLI uses): register, log in,
push an iris model, see it built, deploy it, predict the right classes, scale to 2 replicas,
roll back to an older version, delete, and get 404 afterwards - on the distributed path (every
service in its own process on PostgreSQL, RabbitMQ and S3) and on the embedded path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest
from kubeserve_sdk import APIError, Client
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.e2e.platform import Platform, distributed, embedded

SAMPLES = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
IRIS_CLASSES = [0, 1, 2]


def iris_model(path: Path) -> Path:
    X, y = load_iris(return_X_y=True)
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), path)
    return path


def constant_model(path: Path) -> Path:
    X, y = load_iris(return_X_y=True)
    joblib.dump(DummyClassifier(strategy="constant", constant=2).fit(X, y), path)
    return path


@pytest.fixture
def distributed_platform(
    tmp_path: Path, database_url: str, amqp_url: str, bus_prefix: str, s3_url: str
) -> Iterator[Platform]:
    bucket = f"e2e-{uuid.uuid4().hex[:12]}"
    with distributed(
        tmp_path,
        database_url=database_url,
        amqp_url=amqp_url,
        bus_prefix=bus_prefix,
        s3_url=s3_url,
        bucket=bucket,
    ) as platform:
        yield platform


@pytest.fixture
def embedded_platform(tmp_path: Path) -> Iterator[Platform]:
    with embedded(tmp_path) as platform:
        yield platform


def journey(platform: Platform, workdir: Path) -> None:
    client = Client(platform.url)
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    password = "an e2e passphrase 42"
    client.register(email, password)
    client.login(email, password)
    assert client.me()["email"] == email

    model = client.create_model("iris", framework="sklearn")
    old = client.push(model["id"], constant_model(workdir / "constant.joblib"))
    old = client.wait_for_version(model["id"], old["id"], timeout=180)
    assert old["status"] == "Ready", old
    new = client.push(model["id"], iris_model(workdir / "iris.joblib"))
    assert new["version_tag"] == "v2"
    new = client.wait_for_version(model["id"], new["id"], timeout=180)
    assert new["status"] == "Ready", new
    assert new["signature"]["n_features_in"] == 4

    # Deploy the older version first, then move to the new one: a revision history to roll back.
    deployment = client.deploy(old["id"])
    deployment = client.wait_for_deployment(deployment["id"], timeout=180)
    assert deployment["status"] == "Running", deployment
    assert client.predict(deployment["id"], {"instances": SAMPLES})["predictions"] == [2, 2, 2]
    client.update(deployment["id"], version_id=new["id"])
    _wait_until_predicts(client, deployment["id"], IRIS_CLASSES)

    # Two replicas, both serving: the gateway spreads calls over them.
    client.scale(deployment["id"], 2)
    deployment = _wait_ready_replicas(client, deployment["id"], 2)
    for _ in range(6):
        assert (
            client.predict(deployment["id"], {"instances": SAMPLES})["predictions"] == IRIS_CLASSES
        )

    # Roll back to the older version (the constant model): its answers come back.
    client.rollback(deployment["id"])
    _wait_until_predicts(client, deployment["id"], [2, 2, 2])
    deployment = client.wait_for_deployment(deployment["id"], timeout=180)
    assert deployment["version_id"] == old["id"]

    client.delete_deployment(deployment["id"])
    with pytest.raises(APIError) as gone:
        _wait_deleted(client, deployment["id"])
    assert gone.value.status == 404
    after = httpx.post(
        f"{platform.url}/api/v1/predict/{deployment['id']}",
        json={"instances": SAMPLES},
        headers={"authorization": f"Bearer {client.credentials.access_token}"},
        timeout=30,
    )
    assert after.status_code == 404, after.text
    assert after.json()["error"]["code"] == "not_found"


def _wait_ready_replicas(client: Client, deployment_id: str, count: int) -> dict:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = client.get_deployment(deployment_id)
        if current["replicas"]["ready"] >= count and current["status"] == "Running":
            return current
        time.sleep(0.3)
    raise AssertionError(f"never {count} ready replicas: {current}")


def _wait_until_predicts(client: Client, deployment_id: str, expected: list[int]) -> None:
    import time

    deadline = time.monotonic() + 120
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.predict(deployment_id, {"instances": SAMPLES})["predictions"]
        except APIError as exc:
            last = exc
        if last == expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"rollback never served {expected}; last answer {last}")


def _wait_deleted(client: Client, deployment_id: str) -> None:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        client.get_deployment(deployment_id)  # raises APIError(404) once gone
        time.sleep(0.3)


def test_distributed_journey(distributed_platform: Platform, tmp_path: Path) -> None:
    try:
        journey(distributed_platform, tmp_path)
    except BaseException:
        print(distributed_platform.log_tail())
        raise


def test_embedded_journey(embedded_platform: Platform, tmp_path: Path) -> None:
    try:
        journey(embedded_platform, tmp_path)
    except BaseException:
        print(embedded_platform.log_tail())
        raise
