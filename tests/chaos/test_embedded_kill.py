"""`kill -9` of `kubeserve up` at random moments while uploads and deploys are under way, then a
restart on the same home: every version ends Ready or Failed (none left Uploading/Building),
every deployment Running with its replicas (none left Pending/Deploying), and it predicts.

The kill moments are random (the seed is printed in a failure, `KUBESERVE_CHAOS_SEED` replays
one); the number of rounds is bounded so the test stays around a minute."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from kubeserve_common.net import free_port
from kubeserve_sdk import Client
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import _clean_env, _wait_ready

# About a minute on an idle 2-core machine; much longer on a busy one (each start re-imports
# the stack, each build forks a sandbox): the timeout leaves room for that.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

EMAIL, PASSWORD = "chaos@example.com", "a chaos passphrase 9"
SAMPLE = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
ROUNDS = 2


class Up:
    """One `kubeserve up` process on `home`, started and killed at will."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> Client:
        port = free_port()
        self.starts += 1
        log = (self.home.parent / f"up-{self.starts}.log").open("wb")
        command = [sys.executable, "-m", "kubeserve_cli", "up", "--port", str(port)]
        self.proc = subprocess.Popen(
            [*command, "--home", str(self.home)],
            env={
                **_clean_env(),
                "KUBESERVE_STOP_REPLICAS_ON_EXIT": "true",
                # A build killed mid-run is re-queued once its lease expires (60 s by default,
                # sized for builds on other machines); short here to keep the test bounded.
                "KUBESERVE_BUILD_LEASE_SECONDS": "6",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        _wait_ready(self.url, self.proc)
        client = Client(self.url)
        if self.starts == 1:
            client.register(EMAIL, PASSWORD)
        client.login(EMAIL, PASSWORD)
        return client

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self) -> str:
        path = self.home.parent / f"up-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-40:])


def _leftovers(home: Path) -> set[int]:
    """Processes (replicas, warm pool) still holding a file under `home`: started by our
    `kubeserve up`, orphaned by its kill -9."""
    root = str(home.resolve())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(root + "/"):
                        found.add(int(entry))
                        break
    return found


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    platform = Up(tmp_path / "home")
    platform.home.mkdir()
    try:
        yield platform
    finally:
        platform.stop()
        for pid in _leftovers(platform.home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            ok, last = predicate()
            if ok:
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last}")


def test_kill_9_at_random_moments_then_restart_converges(up: Up, tmp_path: Path) -> None:
    seed = int(os.environ.get("KUBESERVE_CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    X, y = load_iris(return_X_y=True)
    model_file = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=300).fit(X, y), model_file)

    client = up.start()
    model = client.create_model("iris")
    first = client.wait_for_version(model["id"], client.push(model["id"], model_file)["id"])
    assert first["status"] == "Ready", first

    for _ in range(ROUNDS):
        # Work in flight: uploads to build, a deployment to start, then a kill at a random moment.
        for _ in range(2):
            with contextlib.suppress(httpx.HTTPError):
                client.push(model["id"], model_file)
        with contextlib.suppress(httpx.HTTPError):
            client.deploy(first["id"], replicas=1)
        time.sleep(rng.uniform(0.0, 2.5))
        up.kill9()
        client = up.start()

    versions: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []

    def versions_settled() -> tuple[bool, Any]:
        versions[:] = client.list_versions(model["id"])
        states = [(v["version_tag"], v["status"], v.get("failure_reason")) for v in versions]
        return all(status in ("Ready", "Failed") for _, status, _ in states), states

    def deployments_settled() -> tuple[bool, Any]:
        deployments[:] = [client.get_deployment(d["id"]) for d in client.list_deployments()]
        states = [
            (d["status"], d["replicas"]["ready"], d["replicas"]["desired"]) for d in deployments
        ]
        done = all(s == "Running" and ready == want for s, ready, want in states)
        return done, states

    context = f"(seed {seed}; log tail:\n{up.log_tail()})"
    try:
        _wait(versions_settled, 90, "every version to be Ready or Failed")
        _wait(deployments_settled, 90, "every deployment to be Running with its replicas")
    except AssertionError as exc:
        raise AssertionError(f"{exc} {context}") from None
    assert len(versions) == 1 + 2 * ROUNDS, context  # every upload answered 201 is still there
    assert len(deployments) == ROUNDS, context
    for deployment in deployments:
        assert client.predict(deployment["id"], SAMPLE)["predictions"], context
