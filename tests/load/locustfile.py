"""Load suite (issue 12.6): predictions through the gateway with a rising number of users.

    uv run locust -f tests/load/locustfile.py --headless --host http://127.0.0.1:8080

It logs in (registering the account when it does not exist), finds the deployment named
`load-test` or creates it (a small random forest on iris, autoscaled 1..3 at 2 in flight), then
raises the users step by step and prints req/s, p50/p99 and the error rate at the end.

Environment (all optional): KUBESERVE_LOAD_EMAIL / KUBESERVE_LOAD_PASSWORD (the account),
KUBESERVE_LOAD_DEPLOYMENT (an existing deployment id to drive instead), KUBESERVE_LOAD_USERS
(16: the last step), KUBESERVE_LOAD_STEP_USERS (4), KUBESERVE_LOAD_STEP_S (5 s per step),
KUBESERVE_LOAD_DURATION_S (60 s in all), KUBESERVE_LOAD_TARGET_CONCURRENCY (2, for a
deployment it creates). The gateway rate-limits each account and deployment (see the gateway
README): point it at a platform started with KUBESERVE_RATE_LIMIT_ENABLED=false to measure
the platform rather than its limits.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import requests
from locust import HttpUser, LoadTestShape, constant, events, task

EMAIL = os.environ.get("KUBESERVE_LOAD_EMAIL", "load-test@example.com")
PASSWORD = os.environ.get("KUBESERVE_LOAD_PASSWORD", "load test passphrase 12")
MAX_USERS = int(os.environ.get("KUBESERVE_LOAD_USERS", "16"))
STEP_USERS = int(os.environ.get("KUBESERVE_LOAD_STEP_USERS", "4"))
STEP_S = float(os.environ.get("KUBESERVE_LOAD_STEP_S", "5"))
DURATION_S = float(os.environ.get("KUBESERVE_LOAD_DURATION_S", "60"))
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 3,
    "target_concurrency": float(os.environ.get("KUBESERVE_LOAD_TARGET_CONCURRENCY", "2")),
}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]

STATE: dict[str, str] = {}


def _api(host: str) -> str:
    return host.rstrip("/") + "/api/v1"


def _login(api: str) -> str:
    body = {"email": EMAIL, "password": PASSWORD}
    response = requests.post(f"{api}/auth/login", json=body, timeout=30)
    if response.status_code == 401:
        requests.post(f"{api}/auth/register", json=body, timeout=30).raise_for_status()
        response = requests.post(f"{api}/auth/login", json=body, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _forest() -> bytes:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    out = io.BytesIO()
    joblib.dump(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y), out)
    return out.getvalue()


def _wait(check: Any, what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def find_or_create_deployment(api: str, token: str) -> str:
    auth = {"authorization": f"Bearer {token}"}
    listed = requests.get(f"{api}/deployments?limit=100", headers=auth, timeout=30)
    listed.raise_for_status()
    for item in listed.json()["items"]:
        if item["name"] == "load-test" and item["status"] == "Running":
            return str(item["id"])
    models = requests.get(f"{api}/models?limit=100", headers=auth, timeout=30).json()["items"]
    model = next((m for m in models if m["name"] == "load-test"), None)
    if model is None:
        model = requests.post(
            f"{api}/models",
            json={"name": "load-test", "framework": "sklearn"},
            headers=auth,
            timeout=30,
        ).json()
    pushed = requests.post(
        f"{api}/models/{model['id']}/versions",
        files={"model": ("model.joblib", _forest())},
        headers=auth,
        timeout=120,
    )
    pushed.raise_for_status()
    tag = pushed.json()["version_tag"]

    def built() -> dict[str, Any] | None:
        v = requests.get(f"{api}/models/{model['id']}/versions/{tag}", headers=auth, timeout=30)
        body: dict[str, Any] = v.json()
        if body.get("status") == "Failed":
            raise RuntimeError(f"the load-test model failed to build: {body}")
        return body if body.get("status") == "Ready" else None

    version = _wait(built, "the load-test model's build")
    created = requests.post(
        f"{api}/deployments",
        json={"version_id": version["id"], "name": "load-test", "autoscaling": AUTOSCALING},
        headers=auth,
        timeout=30,
    )
    created.raise_for_status()
    deployment_id = str(created.json()["id"])

    def running() -> bool:
        d = requests.get(f"{api}/deployments/{deployment_id}", headers=auth, timeout=30).json()
        return bool(d["status"] == "Running")

    _wait(running, "the load-test deployment")
    return deployment_id


@events.init.add_listener
def _prepare(environment: Any, **_: Any) -> None:
    # At start-up, before the users' clock starts: building a model takes a while.
    if environment.host is None:
        raise SystemExit("give the gateway with --host http://127.0.0.1:8080")
    api = _api(environment.host)
    STATE["token"] = _login(api)
    STATE["deployment"] = os.environ.get("KUBESERVE_LOAD_DEPLOYMENT") or (
        find_or_create_deployment(api, STATE["token"])
    )
    print(f"driving deployment {STATE['deployment']}", flush=True)


@events.quitting.add_listener
def _summary(environment: Any, **_: Any) -> None:
    total = environment.stats.total
    if not total.num_requests:
        return
    print(
        "SUMMARY "
        f"requests={total.num_requests} failures={total.num_failures} "
        f"error_rate={total.fail_ratio * 100:.2f}% req/s={total.total_rps:.1f} "
        f"p50={total.get_response_time_percentile(0.5):.0f}ms "
        f"p99={total.get_response_time_percentile(0.99):.0f}ms",
        flush=True,
    )


class PredictUser(HttpUser):
    """A client that sends the next prediction as soon as the last one answered."""

    wait_time = constant(0)

    @task
    def predict(self) -> None:
        with self.client.post(
            f"/api/v1/predict/{STATE['deployment']}",
            json={"instances": ROWS},
            headers={"authorization": f"Bearer {STATE['token']}"},
            name="/api/v1/predict/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif len(response.json().get("predictions", ())) != len(ROWS):
                response.failure(f"unexpected answer: {response.text[:200]}")


class RisingUsers(LoadTestShape):
    """STEP_USERS more users every STEP_S seconds up to MAX_USERS, until DURATION_S."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed > DURATION_S:
            return None
        users = min(MAX_USERS, STEP_USERS * (int(elapsed // STEP_S) + 1))
        return users, float(max(STEP_USERS, 1))
