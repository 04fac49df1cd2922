"""Issue 15's measurements on the distributed platform (five service processes on PostgreSQL,
RabbitMQ and an S3 server), with TCP proxies of our own in front of PostgreSQL and RabbitMQ so a
test can cut a link without touching the machine's shared servers:

- a PostgreSQL cut under mixed traffic: every prediction to a running deployment answers 200
  throughout, no call answers 500 (control-plane calls answer 503 + Retry-After naming the
  database), and afterwards everything converges;
- a RabbitMQ cut in the middle of a burst of model creations and uploads: afterwards every
  event arrived, none twice (one event per model and version, one effect each);
- `kill -9` of the deployer while several deployments start, then a restart: exactly one ready
  replica each, no orphan runtime process;
- a replica killed under load: no failed prediction.

One platform serves the whole file (starting five services is most of its cost)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import joblib
import pytest
from kubeserve_common.events.topology import Topology
from kubeserve_common.testing.plugin import address_of, pg_url_via
from kubeserve_common.testing.proxy import TcpProxy
from kubeserve_sdk import APIError, Client
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.chaos.chaos_helpers import (
    Answer,
    EventTap,
    Traffic,
    answer_of,
    delete_queues_with_prefix,
    descends_from,
    runtime_processes,
    wait_for,
)
from tests.e2e.platform import Platform, distributed

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

SAMPLES = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]
EXPECTED = [0, 2]
PASSWORD = "a chaos passphrase 15"
DB_CUT_SECONDS = 15
BROKER_CUT_SECONDS = 12
# The codes a control-plane call may answer while its database is away (issue 15, item 2).
OUTAGE_CODES = {"database_unavailable", "upstream_unavailable"}


@dataclass
class Chaos:
    platform: Platform
    database: TcpProxy
    broker: TcpProxy
    tap: EventTap
    direct_dsn: str  # the platform's database, not through the proxy (for counting rows)
    model_file: Path
    client: Client  # the tenant every test works as
    model_id: str  # the tenant's iris model
    version_id: str  # a Ready version of it

    @property
    def runtime_dir(self) -> Path:
        return self.platform.home / "runtime"

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.platform.url}/api/v1",
            timeout=30,
            headers={"authorization": f"Bearer {self.client.credentials.access_token}"},
        )


@pytest.fixture(scope="module")
async def chaos_database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A database of this file's own (the platform runs across its tests)."""
    name = f"ks_chaos_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"postgresql+asyncpg://{urlsplit(postgres_admin_dsn).netloc}/{name}"
    admin = await asyncpg.connect(postgres_admin_dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def broker_prefix(amqp_url: str) -> Iterator[str]:
    prefix = f"chaos{uuid.uuid4().hex[:8]}."
    yield prefix
    delete_queues_with_prefix(amqp_url, prefix)


@pytest.fixture(scope="module")
def chaos(
    chaos_database: str,
    amqp_url: str,
    s3_url: str,
    broker_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chaos]:
    home = tmp_path_factory.mktemp("chaos")
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(TcpProxy(*address_of(chaos_database, 5432)))
        broker = stack.enter_context(TcpProxy(*address_of(amqp_url, 5672)))
        tap = EventTap(amqp_url, Topology(broker_prefix).events_exchange).start()
        stack.callback(tap.close)
        platform = stack.enter_context(
            distributed(
                home,
                database_url=pg_url_via(chaos_database, database),
                amqp_url=pg_url_via(amqp_url, broker),
                bus_prefix=broker_prefix,
                s3_url=s3_url,
                bucket=f"chaos-{uuid.uuid4().hex[:12]}",
                env={
                    # One tenant runs every test's deployments: room for all of them.
                    "KUBESERVE_QUOTA_MAX_REPLICAS": "20",
                    "KUBESERVE_QUOTA_CPU": "20",
                    "KUBESERVE_QUOTA_MEMORY_MIB": "65536",
                    "KUBESERVE_LOG_JSON": "false",
                },
            )
        )
        X, y = load_iris(return_X_y=True)
        model_file = home / "iris.joblib"
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), model_file)
        client = Client(platform.url)
        stack.callback(client.close)
        client.register("chaos@example.com", PASSWORD)
        client.login("chaos@example.com", PASSWORD)
        model = client.create_model("iris")
        version = client.wait_for_version(
            model["id"], client.push(model["id"], model_file)["id"], timeout=180
        )
        assert version["status"] == "Ready", version
        direct = chaos_database.replace("postgresql+asyncpg://", "postgresql://")
        yield Chaos(
            platform, database, broker, tap, direct, model_file, client, model["id"], version["id"]
        )


def _running(chaos: Chaos, replicas: int = 1) -> dict[str, Any]:
    deployment = chaos.client.deploy(chaos.version_id, replicas=replicas)
    return _wait_running(chaos, deployment["id"], replicas)


def _wait_running(chaos: Chaos, deployment_id: str, replicas: int) -> dict[str, Any]:
    def ready() -> tuple[bool, Any]:
        got = chaos.client.get_deployment(deployment_id)
        return got["status"] == "Running" and got["replicas"]["ready"] == replicas, got

    return wait_for(ready, 180, f"deployment {deployment_id} Running with {replicas} ready")


def _predict(http: httpx.Client, deployment_id: str) -> list[Answer]:
    response = http.post(f"/predict/{deployment_id}", json={"instances": SAMPLES})
    ok = response.status_code == 200 and response.json().get("predictions") == EXPECTED
    return [answer_of("predict", response, ok)]


def _during(answers: list[Answer], start: float, end: float) -> list[Answer]:
    return [a for a in answers if start <= a.at <= end]


def _summary(answers: list[Answer]) -> Counter[tuple[str, int, str | None]]:
    return Counter((a.call, a.status, a.code) for a in answers)


# -- database cut ------------------------------------------------------------------------------


def test_database_cut_predictions_keep_answering_and_the_control_plane_503s(
    chaos: Chaos,
) -> None:
    deployment = _running(chaos)
    deployment_id = deployment["id"]
    model_id = chaos.model_id
    model_bytes = chaos.model_file.read_bytes()
    tries = iter(range(1_000_000))

    def control_plane(http: httpx.Client) -> list[Answer]:
        """One round of what the dashboard and the CLI do: reads, a login, a model creation,
        an upload, a deploy."""
        n = next(tries)
        got = [
            answer_of("list models", http.get("/models")),
            answer_of("get deployment", http.get(f"/deployments/{deployment_id}")),
            answer_of("list deployments", http.get("/deployments")),
            answer_of("me", http.get("/auth/me")),
            answer_of(
                "login",
                http.post("/auth/login", json={"email": "chaos@example.com", "password": PASSWORD}),
            ),
            answer_of(
                "create model",
                http.post("/models", json={"name": f"cut-{n}", "framework": "sklearn"}),
            ),
        ]
        if n % 3 == 0:
            upload = http.post(
                f"/models/{model_id}/versions",
                files={"model": ("model.joblib", model_bytes)},
            )
            got.append(answer_of("upload", upload))
            deploy = http.post("/deployments", json={"version_id": chaos.version_id})
            got.append(answer_of("deploy", deploy))
        return got

    predictions, calls = Traffic(), Traffic()
    with chaos.http() as p1, chaos.http() as p2, chaos.http() as c1:
        predictions.run(lambda http: _predict(http, deployment_id), p1)
        predictions.run(lambda http: _predict(http, deployment_id), p2)
        calls.run(control_plane, c1)
        try:
            time.sleep(2)
            cut_at = time.monotonic()
            offsets = {name: path.stat().st_size for name, path in chaos.platform.logs.items()}
            chaos.database.cut()
            time.sleep(DB_CUT_SECONDS / 2)
            # The gateway still serves predictions: it stays in its Service (item 3).
            gateway_ready = httpx.get(f"{chaos.platform.url}/readyz", timeout=10).status_code
            time.sleep(DB_CUT_SECONDS / 2)
            chaos.database.restore()
            restored_at = time.monotonic()
            time.sleep(3)
        finally:
            chaos.database.restore()
            predictions.stop()
            calls.stop()

    context = f"\n{chaos.platform.log_tail(25)}"
    assert gateway_ready == 200
    # Predictions: all of them answered, right, throughout the cut.
    during = _during(predictions.answers, cut_at, restored_at)
    assert len(during) > 20, f"the prediction load did not run during the cut{context}"
    failed = [a for a in predictions.answers if not a.ok]
    assert not failed and not predictions.errors, (
        f"{len(failed)} of {len(predictions.answers)} predictions failed: "
        f"{_summary(failed)} {failed[:3]} {predictions.errors[:3]}{context}"
    )
    # Control plane: never a 500; while the database is away a 503 that names it.
    assert not calls.errors, calls.errors[:5]
    before = [a for a in calls.answers if a.at < cut_at]
    assert before and all(a.ok for a in before), f"failed before the cut: {_summary(before)}"
    errors = [a for a in calls.answers if a.status >= 500]
    assert all(a.status == 503 for a in errors), f"{_summary(errors)} {errors[:3]}{context}"
    unnamed = [a for a in errors if a.code not in OUTAGE_CODES or a.retry_after is None]
    assert not unnamed, f"503s without a named outage or Retry-After: {unnamed[:3]}"
    cut_answers = _during(calls.answers, cut_at + 1, restored_at)
    assert any(a.code == "database_unavailable" for a in cut_answers), _summary(cut_answers)
    refused = [a for a in cut_answers if 400 <= a.status < 500]
    assert not refused, f"4xx answers while the database was away: {refused[:3]}"
    # Every kind of call needs the database: each answered that 503 during the cut.
    kinds = {a.call for a in calls.answers}
    answered_503 = {a.call for a in cut_answers if a.code == "database_unavailable"}
    assert answered_503 == kinds, f"never 503 during the cut: {kinds - answered_503}"
    # One log line per outage, no traceback: not per request, not per pass of a loop.
    written = {
        name: _read_from(path, offsets.get(name, 0)) for name, path in chaos.platform.logs.items()
    }
    tracebacks = {n: t.count("Traceback (most recent") for n, t in written.items()}
    assert not any(tracebacks.values()), f"tracebacks during the outage: {tracebacks}"
    for name in ("auth", "registry", "deployer"):
        lines = written[name].count("database unavailable: answering 503")
        assert lines == 1, f"{name} logged the outage {lines} times"

    # Afterwards it converges: every accepted upload ends Ready, every accepted deploy (and a
    # deploy requested right after the link returned) ends Running.
    accepted = [a for a in calls.answers if a.call == "deploy" and a.status == 202]
    after = _until_accepted(lambda: chaos.client.deploy(chaos.version_id))
    deploy_ids = [*{a.id for a in accepted if a.id}, after["id"]]
    for dep in deploy_ids:
        _wait_running(chaos, dep, 1)

    def versions_final() -> tuple[bool, Any]:
        states = Counter(v["status"] for v in chaos.client.list_versions(model_id, limit=100))
        return set(states) <= {"Ready"}, states

    uploads = [a for a in calls.answers if a.call == "upload" and a.status == 201]
    states = wait_for(versions_final, 180, "every uploaded version Ready")
    assert sum(states.values()) == 1 + len(uploads), (states, len(uploads))
    # And the deployment that served through the cut still serves.
    with chaos.http() as http:
        assert _predict(http, deployment_id)[0].ok
    _delete_all(chaos, [deployment_id, *deploy_ids])


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def _until_accepted(create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A create right after a link returned: retried while it answers 503 (what a client does
    with Retry-After; the SDK retries only idempotent calls by itself)."""
    for _ in range(30):
        try:
            return create()
        except APIError as exc:
            if exc.status != 503:
                raise
            time.sleep(1)
    raise AssertionError("still 503 thirty seconds after the link returned")


def _delete_all(chaos: Chaos, deployment_ids: list[str]) -> None:
    """Delete deployments and wait until their replicas are gone (the next test counts
    processes)."""
    for dep in deployment_ids:
        with contextlib.suppress(APIError):
            chaos.client.delete_deployment(dep)

    def gone() -> tuple[bool, Any]:
        left = [d for d in runtime_processes(chaos.runtime_dir)[0].values() if d in deployment_ids]
        return not left, left

    wait_for(gone, 90, "the deleted deployments' replicas to stop")


# -- broker cut --------------------------------------------------------------------------------

MODEL_CREATED = "io.kubeserve.model.created.v1"
VERSION_UPLOADED = "io.kubeserve.version.uploaded.v1"
VERSION_BUILT = "io.kubeserve.version.built.v1"
BUILD_FAILED = "io.kubeserve.version.build_failed.v1"


def test_broker_cut_mid_burst_loses_nothing_and_doubles_nothing(chaos: Chaos) -> None:
    burst = chaos.client.create_model("burst")
    operations = ["create" if i % 4 else "upload" for i in range(28)]  # 21 models, 7 uploads
    pause = (BROKER_CUT_SECONDS + 4) / len(operations)
    answers: list[Answer] = []
    cut_at = restored_at = None
    ready: dict[str, int] = {}
    model_bytes = chaos.model_file.read_bytes()
    with chaos.http() as http:
        for i, operation in enumerate(operations):
            if i == 4:
                chaos.broker.cut()
                cut_at = time.monotonic()
            if cut_at and not restored_at and time.monotonic() - cut_at >= BROKER_CUT_SECONDS:
                chaos.broker.restore()
                restored_at = time.monotonic()
            if operation == "create":
                response = http.post("/models", json={"name": f"b{i}", "framework": "sklearn"})
            else:
                response = http.post(
                    f"/models/{burst['id']}/versions",
                    files={"model": ("model.joblib", model_bytes)},
                )
            answers.append(answer_of(operation, response))
            if i == len(operations) // 2 and chaos.broker.is_cut:
                ready = {
                    name: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code
                    for name, port in chaos.platform.ports.items()
                }
            time.sleep(pause)
        if not restored_at:
            time.sleep(max(0.0, BROKER_CUT_SECONDS - (time.monotonic() - (cut_at or 0))))
            chaos.broker.restore()
            restored_at = time.monotonic()
    chaos.broker.restore()
    assert cut_at is not None
    # The broker takes no service out of its Service (the outbox buffers).
    assert ready == dict.fromkeys(chaos.platform.ports, 200), f"/readyz during the cut: {ready}"
    # Nothing the API accepted needs the broker: every call answered 201 through the cut.
    assert all(a.status == 201 for a in answers), _summary(answers)
    during = [a for a in answers if cut_at <= a.at <= restored_at]
    assert len(during) >= len(operations) // 2, "the burst was not under way during the cut"
    models = {a.id for a in answers if a.call == "create"}
    versions = {a.id for a in answers if a.call == "upload"}
    assert None not in models | versions and len(versions) == 7 and len(models) == 21

    def events_of(type_: str, key: str) -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for event in chaos.tap.seen(type_):
            if event.type == type_:
                ids.setdefault(str(event.data.get(key)), set()).add(event.id)
        return ids

    def all_arrived() -> tuple[bool, Any]:
        created = events_of(MODEL_CREATED, "model_id")
        uploaded = events_of(VERSION_UPLOADED, "version_id")
        built = events_of(VERSION_BUILT, "version_id")
        missing = {
            "created": sorted(models - set(created)),
            "uploaded": sorted(versions - set(uploaded)),
            "built": sorted(versions - set(built)),
        }
        return not any(missing.values()), missing

    wait_for(all_arrived, 240, "every event of the burst on the broker")
    # Each fact is one event (one id), whatever at-least-once delivery repeated.
    for type_, key, ours in (
        (MODEL_CREATED, "model_id", models),
        (VERSION_UPLOADED, "version_id", versions),
        (VERSION_BUILT, "version_id", versions),
    ):
        doubled = {k: ids for k, ids in events_of(type_, key).items() if k in ours and len(ids) > 1}
        assert not doubled, f"{type_}: more than one event for {doubled}"
    assert not [e for e in chaos.tap.seen(BUILD_FAILED) if e.data.get("version_id") in versions]

    # The effects, counted where they land: every version Ready once, v1..v7 with no gap or
    # repeat; one build each; every outbox row sent.
    listed = chaos.client.list_versions(burst["id"], limit=100)
    assert sorted(v["version_tag"] for v in listed) == [f"v{n}" for n in range(1, 8)]
    assert {v["status"] for v in listed} == {"Ready"}, [v["status"] for v in listed]
    builds, unsent, created_rows = _count_rows(chaos.direct_dsn, sorted(versions), sorted(models))
    assert builds == dict.fromkeys(versions, 1), builds
    assert unsent == 0
    assert created_rows == len(models)


def _count_rows(
    dsn: str, versions: list[str], models: list[str]
) -> tuple[dict[str, int], int, int]:
    import asyncio

    async def count() -> tuple[dict[str, int], int, int]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            builds = await conn.fetch(
                "SELECT version_id::text AS v, count(*) AS n FROM builder.builds "
                "WHERE version_id::text = ANY($1::text[]) GROUP BY version_id",
                versions,
            )
            unsent = 0
            for schema in ("auth", "registry", "builder", "deployer"):  # the gateway publishes none
                unsent += await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"
                )
            created = await conn.fetchval(
                "SELECT count(*) FROM registry.outbox WHERE event_type = $1 AND "
                "body::jsonb -> 'data' ->> 'model_id' = ANY($2::text[])",
                MODEL_CREATED,
                models,
            )
            return {r["v"]: r["n"] for r in builds}, unsent, created
        finally:
            await conn.close()

    return asyncio.run(count())


# -- replica kill under load -------------------------------------------------------------------


def test_replica_killed_under_load_costs_no_prediction(chaos: Chaos) -> None:
    deployment_id = _running(chaos, replicas=2)["id"]
    mine = [p for p, d in runtime_processes(chaos.runtime_dir)[0].items() if d == deployment_id]
    assert len(mine) == 2, mine
    load = Traffic()
    clients = [chaos.http() for _ in range(4)]
    try:
        for http in clients:
            load.run(lambda http: _predict(http, deployment_id), http)
        time.sleep(1.5)
        victim = min(mine)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        def replaced() -> tuple[bool, Any]:
            now = [
                p for p, d in runtime_processes(chaos.runtime_dir)[0].items() if d == deployment_id
            ]
            ready = chaos.client.get_deployment(deployment_id)["replicas"]["ready"]
            return victim not in now and len(now) == 2 and ready == 2, (now, ready)

        wait_for(replaced, 90, "the killed replica replaced")
        time.sleep(1.5)
    finally:
        load.stop()
        for http in clients:
            http.close()
    after = [a for a in load.answers if a.at >= killed_at]
    assert len(after) > 20, "the load did not run after the kill"
    failed = [a for a in load.answers if not a.ok]
    assert not failed and not load.errors, (
        f"{len(failed)} of {len(load.answers)} predictions failed: {_summary(failed)} "
        f"{failed[:3]} {load.errors[:3]}"
    )
    _delete_all(chaos, [deployment_id])


# -- deployer kill -9 mid-deploy ---------------------------------------------------------------


def test_deployer_kill_9_mid_deploy_then_restart_one_replica_each(chaos: Chaos) -> None:
    before, _ = runtime_processes(chaos.runtime_dir)
    deployments = [chaos.client.deploy(chaos.version_id)["id"] for _ in range(4)]

    def starting() -> tuple[bool, Any]:
        replicas, _ = runtime_processes(chaos.runtime_dir)
        ours = [d for d in replicas.values() if d in deployments]
        return bool(ours), ours

    wait_for(starting, 120, "a first replica process of the new deployments")
    chaos.platform.kill9("deployer")
    survivors, _ = runtime_processes(chaos.runtime_dir)
    chaos.platform.start("deployer")
    deployer = chaos.platform.processes["deployer"].pid

    for dep in deployments:
        _wait_running(chaos, dep, 1)

    def settled() -> tuple[bool, Any]:
        replicas, pool = runtime_processes(chaos.runtime_dir)
        per = Counter(d for d in replicas.values() if d in deployments)
        strays = {p for p in pool if not descends_from(p, deployer)}
        extra = {p: d for p, d in replicas.items() if d not in deployments and p not in before}
        done = all(per[d] == 1 for d in deployments) and not strays and not extra
        return done, {"per deployment": per, "stray pool": strays, "unknown": extra}

    seen = wait_for(settled, 60, "one replica process per deployment, no orphans")
    # Stable: a few reconcile passes later, still exactly one each (nothing started twice).
    time.sleep(5)
    replicas, pool = runtime_processes(chaos.runtime_dir)
    per = Counter(d for d in replicas.values() if d in deployments)
    assert per == dict.fromkeys(deployments, 1), (per, seen, survivors)
    assert all(descends_from(p, deployer) for p in pool), pool
    for dep in deployments:
        got = chaos.client.get_deployment(dep)
        assert got["status"] == "Running" and got["replicas"]["ready"] == 1, got
    with chaos.http() as http:
        for dep in deployments:
            assert _predict(http, dep)[0].ok
    _delete_all(chaos, deployments)
