"""`GET /deployments/{id}/logs` on both backends: the local backend's replica files written by a
real runtime process, and pod logs through the Kubernetes port (its fake): plain text and SSE,
`replica`, `since`, `tail`, `follow` over a real HTTP connection, another tenant's 404."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from deployer_helpers import Deployer, Seeder
from k8s_fakes import FakeCluster
from kubeserve_common.net import free_port
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.backends.kubernetes.release import release_name
from test_kubernetes_lifecycle import make_backend


async def _running(deployer: Deployer, seeder: Seeder, owner: uuid.UUID, **body: Any) -> str:
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id, "v1", seeder.models.v1)
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(v1.version_id), **body})
    assert created.status_code == 202, created.text
    dep = str(created.json()["id"])
    await deployer.wait_status(owner, dep, "Running")
    return dep


@contextlib.asynccontextmanager
async def served(deployer: Deployer) -> AsyncIterator[str]:
    """The deployer's app on a real socket, on the test's loop (its engine lives there):
    ASGITransport buffers a response whole, a follower needs it chunk by chunk."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(deployer.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, timeout=20, message="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _sse_lines(lines: AsyncIterator[str], wanted: Callable[[str], bool]) -> list[str]:
    """Log lines of an SSE stream (its `aiter_lines()`) until one satisfies `wanted`."""
    seen: list[str] = []
    async for raw in lines:
        if raw.startswith("data: ") and '"line"' in raw:
            seen.append(json.loads(raw[6:])["line"])
            if wanted(seen[-1]):
                return seen
    raise AssertionError(f"the stream ended without the line; saw {seen}")


async def test_local_replica_logs(deployer: Deployer, seeder: Seeder, runtime_dir: Path) -> None:
    owner = uuid.uuid4()
    dep = await _running(deployer, seeder, owner)
    async with deployer.client(owner) as api:
        whole = await api.get(f"/deployments/{dep}/logs", params={"replica": 0})
        assert whole.status_code == 200, whole.text
        assert whole.headers["content-type"].startswith("text/plain")
        # The replica's own words: its model load and the server's start, timestamped.
        assert "loaded from" in whole.text and "Application startup complete" in whole.text
        assert not whole.text.startswith("[replica")  # one replica asked for: no prefix

        every = await api.get(f"/deployments/{dep}/logs")
        assert every.status_code == 200
        assert all(line.startswith("[replica 0] ") for line in every.text.splitlines())

        last = await api.get(f"/deployments/{dep}/logs", params={"replica": 0, "tail": 1})
        assert last.text.splitlines() == whole.text.splitlines()[-1:]

        future = await api.get(f"/deployments/{dep}/logs", params={"since": "2999-01-01T00:00Z"})
        assert future.status_code == 200 and future.text == ""
        recent = await api.get(f"/deployments/{dep}/logs", params={"since": "1h"})
        assert "Application startup complete" in recent.text

        bad_since = await api.get(f"/deployments/{dep}/logs", params={"since": "yesterday"})
        assert bad_since.status_code == 422
        assert "since" in bad_since.json()["error"]["message"]
        no_replica = await api.get(f"/deployments/{dep}/logs", params={"replica": 7})
        assert no_replica.status_code == 404
        assert "replicas with logs: 0" in no_replica.json()["error"]["message"]

    async with deployer.client(uuid.uuid4()) as stranger:
        other = await stranger.get(f"/deployments/{dep}/logs")
        assert other.status_code == 404
        assert "error" in other.json()

    # Following: a line the replica writes later arrives on the open stream.
    [log_file] = (runtime_dir / "logs" / dep).glob("*-0.log")
    async with served(deployer) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = {**deployer.client(owner).headers, "accept": "text/event-stream"}
        async with http.stream(
            "GET", f"/deployments/{dep}/logs", params={"follow": "true"}, headers=headers
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            await _sse_lines(lines, lambda line: "Application startup complete" in line)
            with log_file.open("a") as fh:
                fh.write("a line printed by the model later\n")
            later = await _sse_lines(lines, lambda line: "printed by the model" in line)
            assert later[-1] == "a line printed by the model later"


@pytest.fixture
async def k8s_deployer(
    start_deployer: Callable[..., Any], cluster: FakeCluster, s3: S3ArtifactStore
) -> Deployer:
    return await start_deployer(
        backend=make_backend(cluster, s3), runtime_backend="kubernetes", reconcile_interval=0.2
    )


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


async def test_kubernetes_pod_logs(
    k8s_deployer: Deployer, seeder: Seeder, cluster: FakeCluster
) -> None:
    owner = uuid.uuid4()
    dep = await _running(k8s_deployer, seeder, owner, replicas=2)
    ns, release = f"user-{owner}", release_name(uuid.UUID(dep))
    pods = sorted(f"{release}-r1-{i}" for i in range(2))
    cluster.write_log(ns, pods[0], "an hour-old line", age=3600)
    cluster.write_log(ns, pods[0], "pod zero says hello")
    cluster.write_log(ns, pods[1], "pod one says hello")

    async with k8s_deployer.client(owner) as api:
        both = await api.get(f"/deployments/{dep}/logs")
        assert both.status_code == 200, both.text
        assert sorted(both.text.splitlines()) == [
            "[replica 0] an hour-old line",
            "[replica 0] pod zero says hello",
            "[replica 1] pod one says hello",
        ]
        one = await api.get(f"/deployments/{dep}/logs", params={"replica": 1})
        assert one.text == "pod one says hello\n"
        recent = await api.get(f"/deployments/{dep}/logs", params={"replica": 0, "since": "10m"})
        assert recent.text == "pod zero says hello\n"
        request = cluster.log_requests[-1]
        assert request["container"] == "runtime" and 599 <= request["since_seconds"] <= 601
    async with k8s_deployer.client(uuid.uuid4()) as stranger:
        assert (await stranger.get(f"/deployments/{dep}/logs")).status_code == 404

    async with served(k8s_deployer) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = {**k8s_deployer.client(owner).headers, "accept": "text/event-stream"}
        async with http.stream(
            "GET",
            f"/deployments/{dep}/logs",
            params={"follow": "true", "replica": 0, "tail": 1},
            headers=headers,
        ) as stream:
            lines = stream.aiter_lines()
            first = await _sse_lines(lines, lambda line: True)
            assert first == ["pod zero says hello"]
            cluster.write_log(ns, pods[0], "written while following")
            assert (await _sse_lines(lines, lambda line: True)) == ["written while following"]
