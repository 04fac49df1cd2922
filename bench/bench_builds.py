"""Builds in parallel and fair (issue 15.5): a burst of N uploads from tenant A plus one upload
from tenant B right after, until every version is built.

Embedded configuration (SQLite, the in-process bus, a local artifact directory), the real
builder with its sandboxed trials. Two variants in the same run:
  - serial:   build_concurrency=1 (the old builder's behaviour);
  - parallel: build_concurrency=<cores> (the default), round-robin across tenants.

    uv run python bench/bench_builds.py             # N=50
    uv run python bench/bench_builds.py --quick     # N=8

Both variants hand builds out round-robin by tenant (the queue's order), so B waits about one
build in each; the serial run shows what parallel trials add. Prints, per variant, the time
until all N+1 builds are done and how long B's single upload
waited for its result, then the ratios (serial / parallel). Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import joblib
import numpy as np
from kubeserve_builder.bootstrap import bootstrap
from kubeserve_builder.settings import BuilderSettings
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.storage.local import LocalArtifactStore
from sklearn.linear_model import LinearRegression

RESULTS = (VersionBuilt.event_type(), VersionBuildFailed.event_type())


def _model() -> bytes:
    x = np.arange(20, dtype=float).reshape(10, 2)
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit(x, x.sum(axis=1)), buf)
    return buf.getvalue()


async def _run(n: int, concurrency: int, home: Path) -> dict[str, float]:
    settings = BuilderSettings(
        dev_mode=True,
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'db' / 'builder.db'}",
        broker_url="memory://",
        artifact_store_url=(home / "artifacts").as_uri(),
        outbox_poll_interval=0.05,
        build_poll_interval=0.1,
        build_concurrency=concurrency,
        log_json=False,
        log_level="WARNING",
    )
    bus = InMemoryBus("bench")
    await bus.connect()
    done: dict[str, float] = {}
    failed: list[str] = []
    all_done = asyncio.Event()

    async def collect(event: CloudEvent) -> None:
        done[str(event.data["version_id"])] = time.perf_counter()
        if len(done) >= n + 1:
            all_done.set()
        if event.type != RESULTS[0]:
            failed.append(str(event.data.get("reason")))

    await bus.subscribe(Subscription(Topology().queue("bench", "results"), RESULTS), collect)
    container = bootstrap(settings, bus=bus)
    await container.start()
    store = LocalArtifactStore(home / "artifacts")
    data = _model()
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()

    async def upload(owner: uuid.UUID) -> str:
        model = uuid.uuid4()
        stored = await store.put_bytes(f"models/{owner}/{model}/v1/model.joblib", data)
        payload = VersionUploaded(
            model_id=model,
            version_id=uuid.uuid4(),
            version_tag="v1",
            owner_id=owner,
            framework="sklearn",
            artifact_uri=stored.uri,
            filename="model.joblib",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
        await bus.publish(CloudEvent.create(payload, service="registry"))
        return str(payload.version_id)

    try:
        await container.sandbox.info()  # probe and bytecode warm-up before the clock starts
        started = time.perf_counter()
        burst = [await upload(tenant_a) for _ in range(n)]
        b_sent = time.perf_counter()
        single = await upload(tenant_b)
        await all_done.wait()
        if failed:
            print(f"  {len(failed)} builds failed, e.g. {failed[0]}", file=sys.stderr)
        steps: dict[str, list[float]] = {}
        for report in (home / "artifacts").rglob("build-report.json"):
            for step in json.loads(report.read_text())["steps"]:
                steps.setdefault(step["stage"], []).append(step["duration_ms"])
        means = ", ".join(f"{k} {sum(v) / len(v):.0f}" for k, v in steps.items())
        print(f"  mean step ms: {means}")
        return {
            "all_ms": (max(done[v] for v in [*burst, single]) - started) * 1000,
            "b_wait_ms": (done[single] - b_sent) * 1000,
        }
    finally:
        await container.stop()
        await bus.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50, help="uploads in tenant A's burst")
    parser.add_argument("--quick", action="store_true", help="N=8")
    args = parser.parse_args()
    n = 8 if args.quick else args.n
    cores = os.cpu_count() or 1
    results = {}
    for name, concurrency in (("serial", 1), ("parallel", cores)):
        with tempfile.TemporaryDirectory(prefix=f"kubeserve-bench-builds-{name}-") as tmp:
            results[name] = await _run(n, concurrency, Path(tmp))
        r = results[name]
        print(
            f"{name:9s} concurrency={concurrency}: {n}+1 builds done in {r['all_ms'] / 1000:.1f} s;"
            f" tenant B's upload waited {r['b_wait_ms'] / 1000:.1f} s"
        )
    serial, parallel = results["serial"], results["parallel"]
    print(f"ratio all-done serial/parallel: {serial['all_ms'] / parallel['all_ms']:.2f}x")
    print(f"ratio B's wait serial/parallel: {serial['b_wait_ms'] / parallel['b_wait_ms']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
