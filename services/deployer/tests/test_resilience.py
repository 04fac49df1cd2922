"""Replicas survive what happens around them: a killed replica is restarted, a deployer restart
re-adopts the running replicas (no duplicates), a model that cannot load fails the deploy with
its reason while the previous revision keeps serving."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployer_helpers import (
    Deployer,
    Events,
    Seeder,
    environ_of,
    pid_alive,
    predict,
    runtime_processes,
)
from kubeserve_common.testing.waiting import wait_until


async def _running(deployer: Deployer, seeder: Seeder, replicas: int) -> tuple[uuid.UUID, str]:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id, "v1")
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post(
            "/deployments", json={"version_id": str(v1.version_id), "replicas": replicas}
        )
        assert created.status_code == 202, created.text
    dep = created.json()["id"]
    await deployer.wait_status(owner, dep, "Running")
    return owner, dep


async def test_killed_replica_is_restarted(
    deployer: Deployer, seeder: Seeder, runtime_dir: Path
) -> None:
    owner, dep = await _running(deployer, seeder, replicas=2)
    endpoints = await deployer.wait_route(dep, 2)
    victims = runtime_processes(runtime_dir)
    assert len(victims) == 2
    victim = sorted(victims)[0]

    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        live = runtime_processes(runtime_dir)
        route = (await deployer.route(dep)).json()
        return victim not in live and len(live) == 2 and len(route["endpoints"]) == 2

    await wait_until(replaced, timeout=60, message="the killed replica restarted")
    for url in await deployer.wait_route(dep, 2):
        assert await predict(url) == seeder.models.v1_expected
    body = await deployer.wait_status(owner, dep, "Running")
    kinds = [e["kind"] for e in body["events"]]
    assert "replica_crashed" in kinds
    assert len(endpoints) == 2
    details = body["replica_details"]
    assert sorted(r["index"] for r in details) == [0, 1]
    assert all(r["status"] == "Ready" for r in details)
    assert sum(r["restarts"] for r in details) == 1
    assert any("process exited" in (r["last_error"] or "") for r in details)


async def test_plain_process_fallback_without_pool(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    deployer: Deployer = await start_deployer(use_warm_pool=False)
    owner, dep = await _running(deployer, seeder, replicas=1)
    [url] = await deployer.wait_route(dep, 1)
    assert await predict(url) == seeder.models.v1_expected
    assert "process" in " ".join(
        e["message"] for e in (await deployer.wait_status(owner, dep, "Running"))["events"]
    )
    assert len(runtime_processes(runtime_dir)) == 1


async def test_deployer_restart_readopts_without_duplicates(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    first: Deployer = await start_deployer()
    owner, dep = await _running(first, seeder, replicas=2)
    endpoints = await first.wait_route(dep, 2)
    before = runtime_processes(runtime_dir)
    assert len(before) == 2

    await first.stop()
    # Replicas run on without their deployer.
    assert runtime_processes(runtime_dir) == before
    for url in endpoints:
        assert await predict(url) == seeder.models.v1_expected

    second: Deployer = await start_deployer()

    async def adopted() -> bool:
        body = (await second.route(dep)).json()
        return sorted(body["endpoints"]) == sorted(endpoints)

    await wait_until(adopted, timeout=30, message="re-adoption")
    # Several reconcile passes later: the same processes, no duplicates started.
    passes = second.container.reconciler.passes
    await wait_until(
        lambda: second.container.reconciler.passes >= passes + 5, message="more passes"
    )
    assert runtime_processes(runtime_dir) == before
    for url in endpoints:
        assert await predict(url) == seeder.models.v1_expected
    body = await second.wait_status(owner, dep, "Running")
    assert "replica_adopted" in [e["kind"] for e in body["events"]]

    # And the new deployer drives them: scaling down stops one of the adopted processes.
    async with second.client(owner) as api:
        assert (await api.patch(f"/deployments/{dep}", json={"replicas": 1})).status_code == 202
    await wait_until(
        lambda: len(runtime_processes(runtime_dir)) == 1, timeout=30, message="scaled down"
    )
    assert runtime_processes(runtime_dir) < before


async def test_dead_replica_is_restarted_after_deployer_restart(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    first: Deployer = await start_deployer()
    _, dep = await _running(first, seeder, replicas=1)
    [pid] = runtime_processes(runtime_dir)
    await first.stop()
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: not pid_alive(pid), message="replica dead")

    second: Deployer = await start_deployer()

    async def serving_again() -> bool:
        live = runtime_processes(runtime_dir)
        endpoints = (await second.route(dep)).json()["endpoints"]
        if len(live) != 1 or pid in live or len(endpoints) != 1:
            return False
        try:
            return await predict(endpoints[0]) == seeder.models.v1_expected
        except httpx.HTTPError:
            return False  # still the dead replica's address, until the first pass

    # serving_again predicts through the new replica: that is the assertion. (A second
    # route read right after it raced a health-check restart on a loaded 2-core machine.)
    await wait_until(serving_again, timeout=60, message="a new replica serving")


async def test_unloadable_model_fails_and_previous_revision_keeps_serving(
    deployer: Deployer, seeder: Seeder, events: Events, runtime_dir: Path
) -> None:
    owner, dep = await _running(deployer, seeder, replicas=1)
    [good] = await deployer.wait_route(dep, 1)
    model_id = (await deployer.wait_status(owner, dep, "Running"))["model_id"]
    broken = await seeder.version(owner, uuid.UUID(model_id), "v2", b"\x80\x04 not a model")
    await deployer.wait_version(owner, broken.version_id)

    async with deployer.client(owner) as api:
        moved = await api.patch(f"/deployments/{dep}", json={"version_id": str(broken.version_id)})
        assert moved.status_code == 202, moved.text

    failed = await deployer.wait_status(owner, dep, "Failed", timeout=90)
    assert failed["failure_reason"]
    assert failed["revision"] == 2 and failed["serving_revision"] == 1
    await wait_until(lambda: bool(events.of("failed", dep)), message="DeploymentFailed")
    assert events.of("failed", dep)[0]["reason"]
    # Revision 1 still serves, alone.
    assert (await deployer.route(dep)).json()["endpoints"] == [good]
    assert await predict(good) == seeder.models.v1_expected
    await wait_until(
        lambda: len(runtime_processes(runtime_dir)) == 1, message="failed replicas stopped"
    )


async def test_stop_replicas_on_exit_then_restart(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    first: Deployer = await start_deployer(stop_replicas_on_exit=True)
    _, dep = await _running(first, seeder, replicas=1)
    [pid] = runtime_processes(runtime_dir)
    await first.stop()
    assert not pid_alive(pid)
    assert runtime_processes(runtime_dir) == set()

    second: Deployer = await start_deployer()

    async def serving() -> bool:
        endpoints = (await second.route(dep)).json()["endpoints"]
        if len(endpoints) != 1 or len(runtime_processes(runtime_dir)) != 1:
            return False
        try:
            return await predict(endpoints[0]) == seeder.models.v1_expected
        except httpx.HTTPError:
            return False

    await wait_until(serving, timeout=60, message="started again from the desired state")


async def test_second_deployer_on_the_host_stands_by_then_takes_over(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    first: Deployer = await start_deployer()
    owner, dep = await _running(first, seeder, replicas=2)
    before = runtime_processes(runtime_dir)
    assert len(before) == 2

    second: Deployer = await start_deployer()
    passes = second.container.reconciler.passes
    await wait_until(
        lambda: second.container.reconciler.passes >= passes + 3, message="standby passes"
    )
    assert not second.container.backend.active
    assert runtime_processes(runtime_dir) == before

    await first.stop()
    await wait_until(lambda: second.container.backend.active, timeout=30, message="takeover")

    async def adopted() -> bool:
        body = await second.wait_status(owner, dep, "Running")
        return [e["kind"] for e in body["events"]].count("replica_adopted") == 2

    await wait_until(adopted, timeout=30, message="both replicas adopted")
    assert runtime_processes(runtime_dir) == before
    async with second.client(owner) as api:
        assert (await api.patch(f"/deployments/{dep}", json={"replicas": 3})).status_code == 202
    await wait_until(
        lambda: len(runtime_processes(runtime_dir)) == 3, timeout=60, message="scaled by second"
    )
    assert before < runtime_processes(runtime_dir)


async def test_artifact_store_outage_delays_but_does_not_fail_a_deploy(
    start_deployer: Callable[..., Any],
    seeder: Seeder,
    s3_url: str,
    tcp_proxy: Callable[[str, int], Any],
) -> None:
    host, port = s3_url.removeprefix("http://").split(":")
    proxy = tcp_proxy(host, int(port))
    deployer: Deployer = await start_deployer(
        s3_endpoint_url=f"http://127.0.0.1:{proxy.port}",
        s3_max_attempts=1,
        s3_connect_timeout=1.0,
        s3_read_timeout=2.0,
        fetch_timeout=3.0,
        restart_backoff_base=0.1,
    )
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id, "v1")
    await deployer.wait_version(owner, v1.version_id)
    proxy.cut()
    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(v1.version_id)})
        assert created.status_code == 202, created.text
    dep = created.json()["id"]

    async def fetch_failed_repeatedly() -> bool:
        async with deployer.client(owner) as api:
            body = (await api.get(f"/deployments/{dep}")).json()
        failures = [e for e in body["events"] if "artifact fetch failed" in e["message"]]
        return len(failures) >= 4 and body["status"] == "Deploying"

    # More fetch failures than `max_start_failures`, yet the deploy has not failed.
    await wait_until(fetch_failed_repeatedly, timeout=60, message="fetch retried")
    proxy.restore()
    await deployer.wait_status(owner, dep, "Running", timeout=90)
    [url] = await deployer.wait_route(dep, 1)
    assert await predict(url) == seeder.models.v1_expected


async def test_deploys_survive_a_dead_warm_pool(deployer: Deployer, seeder: Seeder) -> None:
    pool = deployer.container.backend.pool  # type: ignore[attr-defined]
    assert await pool.wait_ready(120)
    old_pid = pool.pid
    os.kill(old_pid, signal.SIGKILL)
    await wait_until(lambda: not pid_alive(old_pid), message="pool dead")

    _, dep = await _running(deployer, seeder, replicas=1)
    [url] = await deployer.wait_route(dep, 1)
    assert await predict(url) == seeder.models.v1_expected
    assert pool.ready and pool.pid != old_pid  # relaunched for the next deploys


@pytest.mark.parametrize("pool", [True, False])
async def test_replicas_never_see_the_deployers_secrets(
    start_deployer: Callable[..., Any],
    seeder: Seeder,
    runtime_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    pool: bool,
) -> None:
    monkeypatch.setenv("KUBESERVE_INTERNAL_SECRET", "canary-internal-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-secret")
    monkeypatch.setenv("KUBESERVE_MAX_BATCH_SIZE", "8")  # a runtime tunable does pass
    deployer: Deployer = await start_deployer(use_warm_pool=pool)
    await _running(deployer, seeder, replicas=1)
    [pid] = runtime_processes(runtime_dir)
    pids = [pid, *([deployer.container.backend.pool.pid] if pool else [])]  # type: ignore[attr-defined]
    for p in pids:
        environ = environ_of(p)
        assert b"canary" not in environ
        assert b"KUBESERVE_MAX_BATCH_SIZE=8" in environ
