"""The calibrated cold-start prediction, wired (issue 18), on real PostgreSQL, RabbitMQ, S3 and
runtime processes: every replica start is learnt once (not again after a deployer restart or
on later passes), the estimates persist in the database where a separate API process reads
them, the API shows each replica's measured cold start beside the deployment's prediction,
and `GET /cold-start` predicts a version on every backend, for its owner only."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from deployer_helpers import Deployer, Seeder, Version
from kubeserve_common.events.catalog import VersionBuilt
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.repositories.cold_start import ColdStartRepository
from kubeserve_deployer.repositories.orm import ColdStartEstimateRecord
from sqlalchemy import select

BACKENDS = {"local-warm-pool", "local-process", "kubernetes-pod"}
TRIAL_MS = 20.0


async def built_version(seeder: Seeder, owner: uuid.UUID, trial_ms: float = TRIAL_MS) -> Version:
    """A Ready version whose build measured a trial load of `trial_ms`."""
    model_id = await seeder.model(owner)
    v = await seeder.version(owner, model_id, built=False)
    built = VersionBuilt(
        model_id=model_id,
        version_id=v.version_id,
        version_tag=v.tag,
        owner_id=owner,
        signature={},
        dependency_plan={"cold_start": {"model_load_ms": trial_ms, "wheel_bytes": 0}},
        predicted_cold_start_ms=4700.0,
    )
    await seeder.bus.publish(CloudEvent.create(built, service="builder"))
    return v


async def observations(deployer: Deployer) -> dict[tuple[str, str], int]:
    async with deployer.container.uow.reading() as uow:
        rows = (await uow.session.execute(select(ColdStartEstimateRecord))).scalars().all()
        return {(r.backend, r.phase): r.observations for r in rows if r.observations}


async def learnt_starts(deployer: Deployer) -> int:
    async with deployer.container.uow.reading() as uow:
        model = await ColdStartRepository(uow.session).load()
        return max((len(w) for p in model.samples.values() for w in p.values()), default=0)


async def measured_replicas(
    deployer: Deployer, owner: uuid.UUID, dep: str, count: int
) -> dict[str, Any]:
    """The deployment once `count` replicas show a measured cold start."""
    body: dict[str, Any] = {}

    async def measured() -> bool:
        nonlocal body
        async with deployer.client(owner) as api:
            body = (await api.get(f"/deployments/{dep}")).json()
        return sum(1 for r in body["replica_details"] if r["cold_start"]) == count

    await wait_until(measured, timeout=90, interval=0.1, message=f"{count} measured replicas")
    return body


async def test_each_start_is_learnt_once_and_calibrates_the_prediction(
    start_deployer: Callable[..., Any], seeder: Seeder
) -> None:
    first: Deployer = await start_deployer()
    owner = uuid.uuid4()
    v = await built_version(seeder, owner)
    await first.wait_version(owner, v.version_id)
    async with first.client(owner) as api:
        fresh = await api.get("/cold-start", params={"version_id": str(v.version_id)})
        assert fresh.status_code == 200, fresh.text
        assert set(fresh.json()["predicted_cold_start_ms"]) == BACKENDS
        assert {p["label"] for p in fresh.json()["predictions"]} == {"estimate, not yet calibrated"}
        created = await api.post("/deployments", json={"version_id": str(v.version_id)})
        assert created.status_code == 202, created.text
        dep = created.json()["id"]

    body = await measured_replicas(first, owner, dep, 1)
    [replica] = body["replica_details"]
    backend = replica["backend"]
    assert backend in ("local-warm-pool", "local-process")
    cold = replica["cold_start"]
    assert cold["backend"] == backend and cold["total_ms"] > 0
    assert "start" in cold["phases_ms"]
    if backend == "local-warm-pool":  # the pool's child measures its load apart
        assert set(cold["phases_ms"]) == {"start", "model_load", "first_ready"}
        assert sum(cold["phases_ms"].values()) == pytest.approx(cold["total_ms"], abs=0.5)
    predicted = body["predicted_cold_start"]
    assert predicted["backend"] == backend
    assert predicted["observations"] == 1 and not predicted["calibrated"]
    assert predicted["label"] == "estimate, not yet calibrated"
    # Measured and predicted agree phase by phase once one start is known.
    for phase, ms in cold["phases_ms"].items():
        assert predicted["phases_ms"][phase] == pytest.approx(ms, abs=0.15)

    # Many more passes and a deployer restart (the replica is re-adopted, its start measured
    # before): nothing is learnt twice.
    passes = first.container.reconciler.passes
    await wait_until(lambda: first.container.reconciler.passes >= passes + 5, message="passes")
    assert await learnt_starts(first) == 1
    await first.stop()
    second: Deployer = await start_deployer()
    await second.wait_status(owner, dep, "Running")
    passes = second.container.reconciler.passes
    await wait_until(lambda: second.container.reconciler.passes >= passes + 5, message="passes")
    assert await learnt_starts(second) == 1
    again = await measured_replicas(second, owner, dep, 1)
    assert again["replica_details"][0]["cold_start"] == cold

    # Two more replicas: two more starts, and the prediction is the measured median.
    async with second.client(owner) as api:
        scaled = await api.patch(f"/deployments/{dep}", json={"replicas": 3})
        assert scaled.status_code == 202, scaled.text
    body = await measured_replicas(second, owner, dep, 3)
    colds = [r["cold_start"] for r in body["replica_details"]]
    assert await learnt_starts(second) == 3
    assert {(backend, phase) for phase in colds[0]["phases_ms"]} <= set(await observations(second))
    predicted = body["predicted_cold_start"]
    if all(c["backend"] == backend for c in colds):
        assert predicted["calibrated"] and predicted["label"] == "calibrated"
        assert predicted["observations"] == 3
        for phase in colds[0]["phases_ms"]:
            median = statistics.median(c["phases_ms"][phase] for c in colds)
            assert predicted["phases_ms"][phase] == pytest.approx(median, abs=0.15)

    # A separate API process (no consumers, no reconcile loop) reads the same estimates.
    api_only: Deployer = await start_deployer(consume=False)
    async with api_only.client(owner) as api:
        seen = (await api.get("/cold-start", params={"version_id": str(v.version_id)})).json()
    mine = next(p for p in seen["predictions"] if p["backend"] == backend)
    assert mine == predicted
    assert seen["predicted_cold_start_ms"][backend] == predicted["total_ms"]
    assert seen["version_id"] == str(v.version_id)


async def test_cold_start_predictions_are_the_owners_alone(
    start_deployer: Callable[..., Any], seeder: Seeder
) -> None:
    from deployer_helpers import IdleBackend

    deployer: Deployer = await start_deployer(backend=IdleBackend())
    owner, other = uuid.uuid4(), uuid.uuid4()
    v = await built_version(seeder, owner)
    await deployer.wait_version(owner, v.version_id)
    async with deployer.client(owner) as api:
        ok = await api.get("/cold-start", params={"version_id": str(v.version_id)})
        assert ok.status_code == 200
        malformed = await api.get("/cold-start", params={"version_id": "not-a-uuid"})
        assert malformed.status_code == 422
        assert "version_id" in malformed.text and "error" in malformed.json()
        missing = await api.get("/cold-start")
        assert missing.status_code == 422 and "version_id" in missing.text
        unknown = await api.get("/cold-start", params={"version_id": str(uuid.uuid4())})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    async with deployer.client(other) as api:
        theirs = await api.get("/cold-start", params={"version_id": str(v.version_id)})
    # Another tenant's version looks exactly like an unknown one.
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    assert theirs.json()["error"]["message"] == f"version {v.version_id} not found"


async def test_two_writers_lose_no_sample_and_learn_a_start_once(
    start_deployer: Callable[..., Any],
) -> None:
    """Two processes' reconcile passes (two transactions on PostgreSQL) learning at once: the
    backend's rows are locked in turn, so both samples are kept; the same start is learnt by
    whichever comes first, and only once."""
    import asyncio

    from deployer_helpers import IdleBackend
    from kubeserve_deployer.domain.deployments import ReplicaStatus, ReplicaView
    from kubeserve_deployer.services.cold_start import learn_start

    deployer: Deployer = await start_deployer(backend=IdleBackend(), consume=False)
    dep = uuid.uuid4()

    def view(start_id: str, start_ms: float) -> ReplicaView:
        timings = {"fetch_ms": 1.0, "spawn_ms": start_ms - 1.0, "first_health_ms": 100.0}
        timings["model_load_ms"] = 10.0
        ready = ReplicaStatus.READY
        return ReplicaView(dep, 1, 0, ready, "unix:/x", launcher="pool", start_id=start_id,
                           timings=timings)  # fmt: skip

    async def learn(v: ReplicaView) -> dict[str, Any] | None:
        async with deployer.container.uow() as uow:
            cold = await learn_start(uow.session, v, dep, None)
            await asyncio.sleep(0.2)  # hold the lock a while: the other writer must wait
            await uow.commit()
            return cold

    await learn(view("a", 20.0))  # the backend's rows exist from here on
    await asyncio.gather(learn(view("b", 30.0)), learn(view("c", 50.0)))
    await asyncio.gather(learn(view("d", 70.0)), learn(view("d", 70.0)))
    assert await learnt_starts(deployer) == 4
    assert (await observations(deployer))[("local-warm-pool", "start")] == 4
    async with deployer.container.uow.reading() as uow:
        model = await ColdStartRepository(uow.session).load()
    assert sorted(model.samples["local-warm-pool"]["start"]) == [20.0, 30.0, 50.0, 70.0]
