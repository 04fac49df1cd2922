"""Autoscaling times on the embedded platform (`kubeserve up`, default autoscaler windows),
through the gateway, against a plain start measured in the same run:

  - plain start: `POST /deployments {replicas: 1}` until the first 200 prediction;
  - scale-up:    an autoscaled deployment (1..2, target 1) under 4 concurrent clients, from the
                 first request until 2 replicas are ready;
  - wake:        a `min_replicas: 0` deployment at zero replicas, one prediction (held at the
                 gateway while a replica starts) until its 200.

    uv run python bench/bench_autoscale.py            # 3 runs each
    uv run python bench/bench_autoscale.py --runs 1

Prints medians and the ratios to the plain start. Goal (issue 12): wake under 2 s with the warm
pool. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kubeserve_sdk import Client

from tests.e2e.platform import embedded

ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _until(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError("timed out")


def _deploy(api: httpx.Client, version_id: str, **body: Any) -> str:
    created = api.post("/deployments", json={"version_id": version_id, **body})
    created.raise_for_status()
    return str(created.json()["id"])


def _replicas(api: httpx.Client, dep: str) -> dict[str, int]:
    body: dict[str, int] = api.get(f"/deployments/{dep}").json()["replicas"]
    return body


def plain_start(api: httpx.Client, version_id: str) -> float:
    started = time.monotonic()
    dep = _deploy(api, version_id, replicas=1)
    _until(lambda: api.post(f"/predict/{dep}", json=ROWS).status_code == 200)
    elapsed = time.monotonic() - started
    api.delete(f"/deployments/{dep}")
    return elapsed


def scale_up(api: httpx.Client, version_id: str, headers: dict[str, str], url: str) -> float:
    autoscaling = {"min_replicas": 1, "max_replicas": 2, "target_concurrency": 1}
    dep = _deploy(api, version_id, autoscaling=autoscaling)
    _until(lambda: _replicas(api, dep) == {"desired": 1, "ready": 1})
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as http:
            while not stop.is_set():
                http.post(f"/predict/{dep}", json=ROWS)

    workers = [threading.Thread(target=client) for _ in range(4)]
    started = time.monotonic()
    for w in workers:
        w.start()
    try:
        _until(lambda: _replicas(api, dep)["ready"] >= 2)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    api.delete(f"/deployments/{dep}")
    return elapsed


def wake(api: httpx.Client, version_id: str) -> float:
    autoscaling = {
        "min_replicas": 0,
        "max_replicas": 1,
        "target_concurrency": 1,
        "scale_to_zero_after_s": 1,
    }
    dep = _deploy(api, version_id, autoscaling=autoscaling)
    _until(lambda: _replicas(api, dep) == {"desired": 1, "ready": 1})
    _until(lambda: _replicas(api, dep) == {"desired": 0, "ready": 0})
    started = time.monotonic()
    response = api.post(f"/predict/{dep}", json=ROWS)
    elapsed = time.monotonic() - started
    response.raise_for_status()
    api.delete(f"/deployments/{dep}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded(Path(tmp) / "home", {"KUBESERVE_RATE_LIMIT_ENABLED": "false"}) as platform,
    ):
        client = Client(platform.url)
        client.register("bench@example.com", "a bench passphrase 42")
        client.login("bench@example.com", "a bench passphrase 42")
        X, y = load_iris(return_X_y=True)
        model_path = Path(tmp) / "iris.joblib"
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), model_path)
        model = client.create_model("iris")
        version = client.wait_for_version(
            model["id"], client.push(model["id"], model_path)["id"], timeout=300
        )
        headers = {"authorization": f"Bearer {client.credentials.access_token}"}
        with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=60) as api:
            plain = [plain_start(api, version["id"]) for _ in range(runs)]
            ups = [scale_up(api, version["id"], headers, platform.url) for _ in range(runs)]
            wakes = [wake(api, version["id"]) for _ in range(runs)]
    base = statistics.median(plain)
    for name, values in (("plain start", plain), ("scale-up 1->2", ups), ("wake from 0", wakes)):
        median = statistics.median(values)
        print(f"{name:14s} median {median:7.3f} s  ({median / base:5.2f}x plain start)  {values}")
    print(f"goal: wake from zero to first answer < 2 s: {statistics.median(wakes):.3f} s")


if __name__ == "__main__":
    main()
