"""Cold start of a deployment: from `POST /deployments` to the first successful prediction.

Embedded configuration (SQLite, the in-process bus, a local artifact directory, the deployer
app in-process over ASGI, the `local` runtime backend with its warm pool, every replica
sandboxed), N deploys of a tiny iris model, each a fresh deployment (deleted afterwards; the
artifact cache is cleared before each deploy so the fetch is measured too). The first
prediction goes through the gateway's own replica client (`ReplicaPool`, the prediction hop:
over the replica's Unix socket). Beside it, in the same run:
  - bare:        `python -m kubeserve_runtime --model ... --port ...` started cold, until its
                 first successful prediction (what a deploy costs without a warm pool);
  - uncontained: the same embedded deploys with KUBESERVE_INSECURE_NO_SANDBOX=1 (TCP ports,
                 no sandbox): the difference is what the sandbox costs a replica start;
  - fallback:    embedded deploys with the warm pool switched off (plain, sandboxed processes).

    uv run python bench/bench_cold_start.py            # 10 deploys per variant
    uv run python bench/bench_cold_start.py --quick    # 3

Prints p50/p95 per variant and the ratios. Goals: embedded p50 <= 0.5 s; the sandbox adds
<= 100 ms per replica start (contained - uncontained p50); the runtime part (spawn + model load
+ first health, from the deployer's phase timings) <= 0.15x the bare process start. The
gateway's authentication and routing are measured by its own benchmarks. Asserts nothing about
time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def train(path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), path)


async def first_prediction(url: str, deadline: float) -> None:
    """Until the first 200 through the gateway's replica client (TCP or `unix:` endpoints)."""
    from kubeserve_gateway.adapters.replica_http import ReplicaPool

    replicas = ReplicaPool(
        connect_timeout=2, read_timeout=2, pool_timeout=2, max_connections=4, max_keepalive=4
    )
    body = json.dumps(ROWS).encode()
    headers = [("content-type", "application/json")]
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                response = await replicas.request("POST", f"{url}/predict", headers, body)
                await response.read()
                if response.status == 200:
                    return
            await asyncio.sleep(0.005)
    finally:
        await replicas.aclose()
    raise TimeoutError(f"{url} never answered")


async def bare_start(model: Path, runs: int) -> list[float]:
    from kubeserve_common.net import free_port

    times = []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "kubeserve_runtime", "--model", str(model), "--name", "iris"),
            *("--port", str(port), "--log-level", "warning"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await first_prediction(f"http://127.0.0.1:{port}", time.monotonic() + 60)
            times.append(time.perf_counter() - started)
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await asyncio.wait_for(proc.wait(), 5)
    return times


async def embedded_deploys(
    model: Path, runs: int, *, pool: bool, sandbox: bool = True
) -> tuple[list[float], list[dict[str, float]], float | None]:
    from kubeserve_common.events.catalog import ModelCreated, VersionBuilt, VersionUploaded
    from kubeserve_common.events.envelope import CloudEvent
    from kubeserve_common.messaging.memory import InMemoryBus
    from kubeserve_common.security.principal import (
        PRINCIPAL_HEADER,
        Principal,
        encode_principal,
    )
    from kubeserve_common.security.tokens import issue_internal_token
    from kubeserve_common.storage import create_artifact_store
    from kubeserve_deployer.bootstrap import bootstrap
    from kubeserve_deployer.main import create_app
    from kubeserve_deployer.repositories.versions import VersionRepository
    from kubeserve_deployer.settings import DeployerSettings

    home = Path(tempfile.mkdtemp(prefix="ks-bench-"))
    settings = DeployerSettings(
        dev_mode=True,
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'db' / 'deployer.db'}",
        broker_url="memory://",
        use_warm_pool=pool,
        insecure_no_sandbox=not sandbox,
        log_json=False,
        log_level="WARNING",
    )
    bus = InMemoryBus("bench")
    await bus.connect()
    container = bootstrap(settings, bus=bus)
    await container.start()
    secret = settings.internal_secret.get_secret_value()
    owner, model_id, version_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    store = create_artifact_store(settings)
    stored = await store.put_bytes(
        f"models/{owner}/{model_id}/v1/model.joblib", await asyncio.to_thread(model.read_bytes)
    )
    for payload in (
        ModelCreated(model_id=model_id, owner_id=owner, name="iris", framework="sklearn"),
        VersionUploaded(
            model_id=model_id,
            version_id=version_id,
            version_tag="v1",
            owner_id=owner,
            framework="sklearn",
            artifact_uri=stored.uri,
            filename="model.joblib",
            sha256=stored.sha256,
            size=stored.size,
        ),
        VersionBuilt(
            model_id=model_id,
            version_id=version_id,
            version_tag="v1",
            owner_id=owner,
            signature={},
            dependency_plan={},
            predicted_cold_start_ms=0.0,
        ),
    ):
        await bus.publish(CloudEvent.create(payload, service="registry"))
    for _ in range(600):  # the projection catches up
        async with container.uow() as uow:
            found = await VersionRepository(uow.session).get_owned(owner, version_id)
            if found is not None and found.status == "Ready" and found.artifact_uri:
                break
        await asyncio.sleep(0.01)
    pool_import_ms = None
    backend: Any = container.backend
    if pool and backend.pool is not None:
        await backend.pool.wait_ready(120)  # measured separately: paid once per deployer
        pool_import_ms = backend.pool.import_ms

    app = create_app(container, manage_container=False)
    user = {PRINCIPAL_HEADER: encode_principal(Principal(user_id=owner), secret, 3600)}
    internal = {
        "Authorization": "Bearer "
        + issue_internal_token(secret, subject="service:bench", claims={}, ttl_seconds=3600)
    }
    totals: list[float] = []
    phases: list[dict[str, float]] = []
    cache = settings.resolved_runtime_dir() / "cache"
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://deployer", headers=user
        ) as api:
            for _ in range(runs):
                shutil.rmtree(cache, ignore_errors=True)  # measure the fetch too
                started = time.perf_counter()
                created = await api.post("/deployments", json={"version_id": str(version_id)})
                created.raise_for_status()
                dep = created.json()["id"]
                deadline = time.monotonic() + 60
                endpoints: list[str] = []
                while not endpoints:
                    if time.monotonic() > deadline:
                        raise TimeoutError("deployment never became ready")
                    route = await api.get(f"/internal/deployments/{dep}/route", headers=internal)
                    endpoints = route.json().get("endpoints") or []
                    if not endpoints:
                        await asyncio.sleep(0.005)
                await first_prediction(endpoints[0], deadline)
                totals.append(time.perf_counter() - started)
                body = (await api.get(f"/deployments/{dep}")).json()
                phases.append(body.get("cold_start") or {})
                (await api.delete(f"/deployments/{dep}")).raise_for_status()
                # Polling the API is what a client does; there is no event to await here.
                while (await api.get(f"/deployments/{dep}")).status_code != 404:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
    finally:
        await container.stop()
        await bus.close()
        await store.close()
        shutil.rmtree(home, ignore_errors=True)
    return totals, phases, pool_import_ms


def line(name: str, values: list[float]) -> str:
    return (
        f"  {name:<28} p50 {statistics.median(values) * 1000:8.1f} ms   "
        f"p95 {pct(values, 0.95) * 1000:8.1f} ms   (n={len(values)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 deploys per variant")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs

    work = Path(tempfile.mkdtemp(prefix="ks-bench-model-"))
    model = work / "model.joblib"
    train(model)
    try:
        bare = await bare_start(model, runs)
        pooled, phases, pool_import_ms = await embedded_deploys(model, runs, pool=True)
        open_, _, _ = await embedded_deploys(model, runs, pool=True, sandbox=False)
        plain, _, _ = await embedded_deploys(model, runs, pool=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    runtime_part = [
        (p.get("spawn_ms", 0.0) + p.get("first_health_ms", 0.0)) / 1000 for p in phases if p
    ]
    print(f"cold start, POST /deployments -> first prediction ({runs} deploys per variant)")
    print(line("bare process start", bare))
    print(line("embedded, warm pool", pooled))
    print(line("embedded, pool, NO sandbox", open_))
    print(line("embedded, no pool (fallback)", plain))
    print(line("runtime part (pool)", runtime_part))
    if pool_import_ms is not None:
        print(f"  warm pool start (once per deployer): {pool_import_ms:.0f} ms of imports")
    for key in ("fetch_ms", "spawn_ms", "model_load_ms", "app_ms", "first_health_ms"):
        values = [p[key] for p in phases if key in p]
        if values:
            print(f"    phase {key:<16} p50 {statistics.median(values):7.1f} ms")
    bare_p50 = statistics.median(bare)
    print("ratios (p50)")
    print(
        f"  embedded/bare          {statistics.median(pooled) / bare_p50:6.3f}x"
        f"   (goal: embedded p50 <= 0.5 s: {statistics.median(pooled):.3f} s)"
    )
    sandbox_ms = (statistics.median(pooled) - statistics.median(open_)) * 1000
    print(
        f"  contained/uncontained  {statistics.median(pooled) / statistics.median(open_):6.3f}x"
        f"   (the sandbox adds {sandbox_ms:+.0f} ms per replica start; goal <= +100 ms)"
    )
    runtime_ratio = statistics.median(runtime_part) / bare_p50
    print(f"  runtime part/bare      {runtime_ratio:6.3f}x   (goal <= 0.15x)")
    print(f"  no-pool/bare           {statistics.median(plain) / bare_p50:6.3f}x")


if __name__ == "__main__":
    asyncio.run(main())
