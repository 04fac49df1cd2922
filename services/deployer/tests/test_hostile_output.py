"""What a tenant's model prints reaches the database (a crashed replica's last words become the
deployment's failure reason, its events and its replica rows): a NUL byte there, which
PostgreSQL's text refuses, must not stop the reconcile loop - the model's deployment fails with
its words and another tenant's deployment still starts. Real replicas, real PostgreSQL."""

from __future__ import annotations

import pickle
import uuid

from deployer_helpers import Deployer, Seeder
from kubeserve_deployer.backends.kubernetes.release import ContainerProblem, _problem_text


class _PrintsNulAndDies:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        code = "import sys, os; sys.stderr.write('bad\\x00byte from the model\\n'); os._exit(3)"
        return (exec, (code,))


async def test_a_nul_in_a_crashed_replicas_output(deployer: Deployer, seeder: Seeder) -> None:
    mallory, alice = uuid.uuid4(), uuid.uuid4()
    evil_model = await seeder.model(mallory)
    evil = await seeder.version(mallory, evil_model, "v1", pickle.dumps(_PrintsNulAndDies()))
    good_model = await seeder.model(alice)
    good = await seeder.version(alice, good_model, "v1", seeder.models.v1)
    await deployer.wait_version(mallory, evil.version_id)
    await deployer.wait_version(alice, good.version_id)
    async with deployer.client(mallory) as api:
        created = await api.post("/deployments", json={"version_id": str(evil.version_id)})
        assert created.status_code == 202, created.text
        bad = created.json()["id"]
    failed = await deployer.wait_status(mallory, bad, "Failed")
    assert "bad" in failed["failure_reason"] and "byte from the model" in failed["failure_reason"]
    async with deployer.client(alice) as api:
        created = await api.post("/deployments", json={"version_id": str(good.version_id)})
        assert created.status_code == 202, created.text
    await deployer.wait_status(alice, created.json()["id"], "Running")


def test_a_pods_termination_message_is_stored_printable() -> None:
    # On Kubernetes the same words come back as the container's termination message.
    problem = ContainerProblem("terminated", "Error", "bad\x00byte\x1b[2J", exit_code=3)
    assert problem.message == "bad\ufffdbyte\ufffd[2J"
    assert "\x00" not in _problem_text(problem)


async def test_a_deployment_that_cannot_be_recorded_does_not_stall_the_others(
    deployer: Deployer, seeder: Seeder
) -> None:
    # Whatever else the database may one day refuse for one deployment (the NUL above was one
    # such value): the pass records every other deployment, then reports its failure.
    mallory, alice = uuid.uuid4(), uuid.uuid4()
    stuck_model = await seeder.model(mallory)
    stuck = await seeder.version(mallory, stuck_model, "v1", seeder.models.v1)
    good_model = await seeder.model(alice)
    good = await seeder.version(alice, good_model, "v1", seeder.models.v1)
    await deployer.wait_version(mallory, stuck.version_id)
    await deployer.wait_version(alice, good.version_id)
    reconciler = deployer.container.reconciler
    real_record = reconciler._record
    refused: set[str] = set()
    refused_ids: set[uuid.UUID] = set()

    async def record(spec, obs):  # type: ignore[no-untyped-def]
        if spec.deployment_id in refused_ids:
            refused.add(str(spec.deployment_id))
            raise RuntimeError("the database refused this deployment's row")
        await real_record(spec, obs)

    reconciler._record = record  # type: ignore[method-assign]
    try:
        async with deployer.client(mallory) as api:
            created = await api.post("/deployments", json={"version_id": str(stuck.version_id)})
            assert created.status_code == 202, created.text
            refused_ids.add(uuid.UUID(created.json()["id"]))
        async with deployer.client(alice) as api:
            created = await api.post("/deployments", json={"version_id": str(good.version_id)})
            assert created.status_code == 202, created.text
        await deployer.wait_status(alice, created.json()["id"], "Running")
        assert refused, "the refused deployment was observed in the same passes"
    finally:
        reconciler._record = real_record  # type: ignore[method-assign]
