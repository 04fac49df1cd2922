"""Killing a replica under load, through the gateway of the embedded platform: the calls keep
succeeding (the gateway moves to the other replica), and the deployer starts a new one."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest
from kubeserve_sdk import Client
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import Platform, embedded

SAMPLES = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with embedded(tmp_path / "home") as running:
        yield running


def replica_pids(home: Path) -> set[int]:
    """Runtime processes of this platform, found from /proc: their stdout is a log file under
    `{home}/runtime/logs/` (independent of what the deployer believes)."""
    logs = str((home / "runtime" / "logs").resolve())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/fd/1").startswith(logs + "/"):
                    found.add(int(entry))
            except OSError:
                continue
    # A sandboxed replica is two processes writing its log: the supervisor (its pid for the
    # deployer) and the confined process, the supervisor's child. Count each replica once.
    return {pid for pid in found if _ppid(pid) not in found}


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[1])


def test_killing_a_replica_under_load(platform: Platform, tmp_path: Path) -> None:
    client = Client(platform.url)
    client.register("load@example.com", "a load passphrase 7")
    client.login("load@example.com", "a load passphrase 7")
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)
    model = client.create_model("iris")
    version = client.wait_for_version(
        model["id"], client.push(model["id"], path)["id"], timeout=180
    )
    deployment = client.deploy(version["id"], replicas=2)
    deployment = client.wait_for_deployment(deployment["id"], timeout=180)
    assert deployment["status"] == "Running", deployment
    deadline = time.monotonic() + 60
    while client.get_deployment(deployment["id"])["replicas"]["ready"] < 2:
        assert time.monotonic() < deadline, "never 2 ready replicas"
        time.sleep(0.2)
    before = replica_pids(platform.home)
    assert len(before) == 2, before

    outcomes: list[tuple[float, bool]] = []
    statuses: list[int] = []
    stop = threading.Event()
    headers = {"authorization": f"Bearer {client.credentials.access_token}"}

    def load() -> None:
        with httpx.Client(base_url=platform.url, timeout=10, headers=headers) as http:
            while not stop.is_set():
                response = http.post(
                    f"/api/v1/predict/{deployment['id']}", json={"instances": SAMPLES}
                )
                ok = response.status_code == 200 and response.json()["predictions"] == [0, 2]
                outcomes.append((time.monotonic(), ok))
                statuses.append(response.status_code)
                time.sleep(0.05)  # ~20 calls/s per worker: under the gateway's rate limits

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = killed_at + 60
        while True:
            now = replica_pids(platform.home)
            if victim not in now and len(now) == 2:
                break
            assert time.monotonic() < deadline, f"the replica was not restarted: {now}"
            time.sleep(0.2)
        restarted_at = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)

    after_kill = [ok for at, ok in outcomes if at >= killed_at]
    after_restart = [ok for at, ok in outcomes if at >= restarted_at + 0.5]
    assert len(after_kill) > 20, "the load did not run"
    assert sum(not ok for ok in after_kill) <= max(3, len(after_kill) // 20), (
        f"{sum(not ok for ok in after_kill)} of {len(after_kill)} calls failed after the kill; "
        f"statuses {sorted(set(statuses))}"
    )
    assert after_restart and all(after_restart), "calls still failing after the restart"
    assert client.get_deployment(deployment["id"])["replicas"]["ready"] == 2
