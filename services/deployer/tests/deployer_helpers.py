"""Helpers of the deployer tests: tiny iris models, seeding the version projection through the
bus, a handle on a running deployer, and the processes a test's runtime directory owns."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubeserve_common.events.catalog import ModelCreated, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import EventBus, Subscription
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal
from kubeserve_common.security.tokens import issue_internal_token
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.bootstrap import DeployerContainer
from kubeserve_deployer.main import create_app
from kubeserve_deployer.settings import DeployerSettings

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.7, 3.0, 5.2, 2.3]]


@dataclass(frozen=True)
class Models:
    """v1 predicts class numbers, v2 class names: a response tells which version served it."""

    v1: bytes
    v2: bytes
    v1_expected: list[Any]
    v2_expected: list[Any]


def train_models(directory: Path) -> Models:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    iris = load_iris()
    v1 = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    names = iris.target_names[iris.target]
    v2 = DecisionTreeClassifier(random_state=0).fit(iris.data, names)
    joblib.dump(v1, directory / "v1.joblib")
    joblib.dump(v2, directory / "v2.joblib")
    return Models(
        v1=(directory / "v1.joblib").read_bytes(),
        v2=(directory / "v2.joblib").read_bytes(),
        v1_expected=[int(x) for x in v1.predict(IRIS_ROWS)],
        v2_expected=[str(x) for x in v2.predict(IRIS_ROWS)],
    )


@dataclass
class Version:
    owner_id: uuid.UUID
    model_id: uuid.UUID
    version_id: uuid.UUID
    tag: str


@dataclass
class Seeder:
    bus: EventBus
    s3: S3ArtifactStore
    models: Models

    async def model(self, owner_id: uuid.UUID, name: str = "iris") -> uuid.UUID:
        model_id = uuid.uuid4()
        await self._publish(
            ModelCreated(model_id=model_id, owner_id=owner_id, name=name, framework="sklearn")
        )
        return model_id

    async def version(
        self,
        owner_id: uuid.UUID,
        model_id: uuid.UUID,
        tag: str = "v1",
        data: bytes | None = None,
        *,
        built: bool = True,
    ) -> Version:
        version_id = uuid.uuid4()
        data = data if data is not None else self.models.v1
        obj = await self.s3.put_bytes(f"models/{owner_id}/{model_id}/{tag}/model.joblib", data)
        await self._publish(
            VersionUploaded(
                model_id=model_id,
                version_id=version_id,
                version_tag=tag,
                owner_id=owner_id,
                framework="sklearn",
                artifact_uri=obj.uri,
                filename="model.joblib",
                sha256=obj.sha256,
                size=obj.size,
            )
        )
        if built:
            await self.built(Version(owner_id, model_id, version_id, tag))
        return Version(owner_id, model_id, version_id, tag)

    async def built(self, v: Version) -> None:
        await self._publish(
            VersionBuilt(
                model_id=v.model_id,
                version_id=v.version_id,
                version_tag=v.tag,
                owner_id=v.owner_id,
                signature={"model_type": "test"},
                dependency_plan={},
                predicted_cold_start_ms=10.0,
            )
        )

    async def _publish(self, payload: Any) -> None:
        await self.bus.publish(CloudEvent.create(payload, service="registry"))


@dataclass
class Events:
    received: list[CloudEvent] = field(default_factory=list)

    async def subscribe(self, bus: EventBus, topology: Topology) -> None:
        async def handle(event: CloudEvent) -> None:
            self.received.append(event)

        await bus.subscribe(
            Subscription(topology.queue("observer", "events"), ("io.kubeserve.deployment.#",)),
            handle,
        )

    def of(self, short_type: str, deployment_id: Any) -> list[dict[str, Any]]:
        return [
            e.data
            for e in self.received
            if e.type == f"io.kubeserve.deployment.{short_type}.v1"
            and e.data.get("deployment_id") == str(deployment_id)
        ]


class Deployer:
    def __init__(
        self, container: DeployerContainer, settings: DeployerSettings, stopped: set[int]
    ) -> None:
        self.container = container
        self.settings = settings
        self.app = create_app(container, manage_container=False)
        self._stopped = stopped

    @property
    def secret(self) -> str:
        return self.settings.internal_secret.get_secret_value()

    def client(self, user_id: uuid.UUID | None = None) -> httpx.AsyncClient:
        headers = (
            {PRINCIPAL_HEADER: encode_principal(Principal(user_id=user_id), self.secret, 3600)}
            if user_id
            else {}
        )
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app),
            base_url="http://deployer",
            headers=headers,
            timeout=30,
        )

    def internal_headers(self, subject: str = "service:gateway") -> dict[str, str]:
        token = issue_internal_token(self.secret, subject=subject, claims={})
        return {"Authorization": f"Bearer {token}"}

    async def route(self, deployment_id: Any) -> httpx.Response:
        async with self.client() as c:
            return await c.get(
                f"/internal/deployments/{deployment_id}/route", headers=self.internal_headers()
            )

    async def wait_route(
        self,
        deployment_id: Any,
        count: int,
        timeout: float = 60,  # noqa: ASYNC109
    ) -> list[str]:
        """Wait until the route lists `count` endpoints that all answer; return them."""
        found: list[str] = []

        async def ready() -> bool:
            nonlocal found
            response = await self.route(deployment_id)
            if response.status_code != 200:
                return False
            found = response.json()["endpoints"]
            return len(found) == count

        await wait_until(ready, timeout=timeout, interval=0.05, message=f"{count} endpoints")
        return found

    async def wait_status(
        self,
        user_id: uuid.UUID,
        deployment_id: Any,
        status: str,
        timeout: float = 60,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal body
            async with self.client(user_id) as c:
                response = await c.get(f"/deployments/{deployment_id}")
            body = response.json()
            return response.status_code == 200 and body["status"] == status

        await wait_until(reached, timeout=timeout, interval=0.05, message=f"status {status}")
        return body

    async def wait_version(self, owner_id: uuid.UUID, version_id: uuid.UUID) -> None:
        """Until the deployer's projection has the version Ready with its artifact."""
        from kubeserve_deployer.repositories.versions import VersionRepository

        async def known() -> bool:
            async with self.container.uow() as uow:
                v = await VersionRepository(uow.session).get_owned(owner_id, version_id)
                return v is not None and v.status == "Ready" and bool(v.artifact_uri)

        await wait_until(known, timeout=30, interval=0.05, message="version projected")

    async def stop(self) -> None:
        await self.container.stop()
        self._stopped.add(id(self.container))


def replica_client(endpoint: str, timeout: float = 10) -> tuple[httpx.AsyncClient, str]:
    """A client for one replica endpoint and the base URL to use with it: `unix:/x.sock`
    (a sandboxed replica, no network) or `http://127.0.0.1:port` (the insecure opt-out)."""
    if endpoint.startswith("unix:"):
        transport = httpx.AsyncHTTPTransport(uds=endpoint.removeprefix("unix:"))
        return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False), (
            "http://replica"
        )
    return httpx.AsyncClient(timeout=timeout, trust_env=False), endpoint


async def predict(endpoint: str, rows: list[list[float]] | None = None) -> list[Any]:
    client, base = replica_client(endpoint)
    async with client as c:
        response = await c.post(f"{base}/predict", json={"instances": rows or IRIS_ROWS})
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def environ_of(pid: int) -> bytes:
    """The environment a process was started with (/proc/PID/environ)."""
    with open(f"/proc/{pid}/environ", "rb") as fh:
        return fh.read()


def runtime_processes(runtime_dir: Path, *, include_pool: bool = False) -> set[int]:
    """Live processes writing their output under `runtime_dir`: the test's replicas (their
    stdout is `{runtime_dir}/logs/...`) and, with `include_pool`, its warm pool. Found from
    /proc, independently of what the deployer believes."""
    marker = str(runtime_dir.resolve())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            target = os.readlink(f"/proc/{pid}/fd/1")
            err = os.readlink(f"/proc/{pid}/fd/2")
        except OSError:
            continue
        replica = target.startswith(marker + "/logs/")
        pool = include_pool and err == marker + "/pool.log"
        if (replica or pool) and pid_alive(pid):
            found.add(pid)
    # A sandboxed replica is two processes writing the same log: its supervisor (the pid the
    # deployer tracks) and the confined process (its child). Count the replica once.
    return {pid for pid in found if _ppid(pid) not in found}


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


class IdleBackend:
    """A runtime backend that runs nothing (API validation tests need no processes)."""

    name = "idle"
    active = True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def deploy(self, spec: Any) -> Any:
        return None

    async def scale(self, deployment_id: Any, replicas: int) -> Any:
        return None

    async def undeploy(self, deployment_id: Any) -> None:
        return None

    async def status(self, deployment_id: Any) -> Any:
        return None

    async def reconcile(self, specs: Any) -> dict[Any, Any]:
        return {}

    def next_pass_in(self, idle: float) -> float:
        return idle
