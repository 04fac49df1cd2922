"""The load suite against the embedded platform (`kubeserve up`): the locustfile creates an
autoscaled deployment and drives a rising number of users through the gateway. Asserted: the
ready replicas rise under load, no request fails while they do, and they come back down to the
minimum when the load stops (short autoscaler windows here; the defaults are for users)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kubeserve_sdk import Client

from tests.e2e.platform import embedded

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
EMAIL, PASSWORD = "load-suite@example.com", "a load suite passphrase 3"

PLATFORM_ENV = {
    "KUBESERVE_RATE_LIMIT_ENABLED": "false",  # measure scaling, not the per-account limit
    "KUBESERVE_AUTOSCALE_INTERVAL": "0.5",
    "KUBESERVE_AUTOSCALE_STABLE_WINDOW": "6",
    "KUBESERVE_AUTOSCALE_PANIC_WINDOW": "2",
    "KUBESERVE_AUTOSCALE_SCALE_DOWN_DELAY": "3",
}


@pytest.mark.load
@pytest.mark.timeout(300)
def test_replicas_follow_the_load(tmp_path: Path) -> None:
    with embedded(tmp_path / "home", PLATFORM_ENV) as platform:
        client = Client(platform.url)
        client.register(EMAIL, PASSWORD)
        client.login(EMAIL, PASSWORD)
        headers = {"authorization": f"Bearer {client.credentials.access_token}"}
        out = tmp_path / "locust.out"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")},
            "KUBESERVE_LOAD_EMAIL": EMAIL,
            "KUBESERVE_LOAD_PASSWORD": PASSWORD,
            "KUBESERVE_LOAD_USERS": "16",
            "KUBESERVE_LOAD_STEP_USERS": "4",
            "KUBESERVE_LOAD_STEP_S": "3",
            "KUBESERVE_LOAD_DURATION_S": "40",
            "KUBESERVE_LOAD_TARGET_CONCURRENCY": "1",
        }
        locust = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--host",
                platform.url,
                "--only-summary",
            ],
            env=env,
            stdout=out.open("wb"),
            stderr=subprocess.STDOUT,
        )
        most_ready, deployment_id = 0, None
        with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=10) as api:
            try:
                deadline = time.monotonic() + 240
                while locust.poll() is None:
                    assert time.monotonic() < deadline, out.read_text()[-3000:]
                    items = api.get("/deployments").json()["items"]
                    mine = [d for d in items if d["name"] == "load-test"]
                    if mine:
                        deployment_id = mine[0]["id"]
                        most_ready = max(most_ready, mine[0]["replicas"]["ready"])
                    time.sleep(0.3)
            finally:
                if locust.poll() is None:
                    locust.kill()
                locust.wait(30)
            report = out.read_text()
            summary = re.search(r"SUMMARY requests=(\d+) failures=(\d+) .*", report)
            assert summary, report[-3000:]
            print(summary.group(0))
            assert int(summary.group(1)) > 200, summary.group(0)  # the load really ran
            assert int(summary.group(2)) == 0, report[-3000:]  # nothing failed while scaling
            assert deployment_id is not None
            assert most_ready >= 2, f"replicas never rose: at most {most_ready} ready"

            deadline = time.monotonic() + 90
            while True:
                d = api.get(f"/deployments/{deployment_id}").json()
                if d["replicas"] == {"desired": 1, "ready": 1}:
                    break
                assert time.monotonic() < deadline, f"not back to 1 replica: {d['replicas']}"
                time.sleep(0.5)
            lines = [e["message"] for e in d["events"] if e["kind"] == "autoscaled"]
            assert any(re.match(r"scaled 1 -> [23]: ", m) for m in lines), lines
            assert any(re.match(r"scaled [23] -> [12]: ", m) for m in lines), lines
