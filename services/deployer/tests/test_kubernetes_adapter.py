"""The kubernetes-asyncio adapter's requests, against a fake Kubernetes API server the test runs
(aiohttp on 127.0.0.1, a kubeconfig pointing at it; no real API server can run here): the
server-side-apply PATCH it sends for each object (path, content type, field manager, force,
bearer token), how it reads Deployments, pods and events into the domain's shapes, how HTTP
failures are classified, and that a hung server cannot hold a call past its timeout."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubeserve_deployer.backends.kubernetes.cluster import (
    FIELD_MANAGER,
    ClusterError,
    KubernetesAsyncioCluster,
)
from kubeserve_deployer.backends.kubernetes.lease import LeaseRecord
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.kubernetes.tenancy import tenant_objects

NS = "user-0b7d6f1c-2a9e-4c3e-9a51-2d8e4f7b1c01"


@dataclass
class FakeApiServer:
    """Records requests; answers like the Kubernetes API for the few calls the adapter makes."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int | None = None
    hang: bool = False
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> stored Lease
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends a hang at teardown

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type", ""),
                "authorization": request.headers.get("Authorization", ""),
                "body": json.loads(body) if body else None,
            }
        )
        if self.hang:
            await self.release.wait()
        if self.fail_status is not None:
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"simulated {self.fail_status}",
                    "code": self.fail_status,
                },
                status=self.fail_status,
            )
        parts = request.path.strip("/").split("/")
        if "leases" in parts:
            return self._lease(request.method, parts, json.loads(body) if body else None)
        if request.method == "PATCH":
            return web.json_response(json.loads(body))
        if request.method == "DELETE":
            if parts[-1] == "missing":
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"})
        if request.path.endswith("/status") and "deployments" in parts:
            name = parts[-2]
            if name not in self.deployments:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            return web.json_response(self.deployments[name])
        if parts[-1] == "pods":
            return web.json_response({"kind": "PodList", "apiVersion": "v1", "items": self.pods})
        if parts[-1] == "events":
            return web.json_response(
                {"kind": "EventList", "apiVersion": "v1", "items": self.events}
            )
        return web.json_response({"kind": "Status", "code": 404}, status=404)

    def _lease(self, method: str, parts: list[str], body: Any) -> web.Response:
        """Leases with the API's optimistic concurrency: a stale resourceVersion is a 409."""
        conflict = {"kind": "Status", "code": 409, "reason": "Conflict", "message": "modified"}
        if method == "POST":
            name = body["metadata"]["name"]
            if name in self.leases:
                return web.json_response({**conflict, "reason": "AlreadyExists"}, status=409)
        else:
            name = parts[-1]
            if name not in self.leases:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            if method == "GET":
                return web.json_response(self.leases[name])
            stored_version = self.leases[name]["metadata"]["resourceVersion"]
            if body["metadata"].get("resourceVersion") != stored_version:
                return web.json_response(conflict, status=409)
        stored = json.loads(json.dumps(body))
        stored["metadata"]["resourceVersion"] = str(len(self.requests))
        self.leases[name] = stored
        return web.json_response(stored, status=201 if method == "POST" else 200)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[FakeApiServer, Path]]:
    server = FakeApiServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "deployer", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "deployer"}}],
                "current-context": "fake",
            }
        )
    )
    yield server, kubeconfig
    server.release.set()
    await runner.cleanup()


async def started(kubeconfig: Path, request_timeout: float = 5.0) -> KubernetesAsyncioCluster:
    cluster = KubernetesAsyncioCluster(kubeconfig=kubeconfig, timeout=request_timeout)
    await cluster.start()
    return cluster


async def test_apply_is_a_server_side_apply_patch_per_object(
    api: tuple[FakeApiServer, Path],
) -> None:
    server, kubeconfig = api
    cluster = await started(kubeconfig)
    objects = tenant_objects(
        NS.removeprefix("user-"), KubernetesSettings(object_store_namespace="minio")
    )
    try:
        await cluster.apply(objects)
    finally:
        await cluster.close()
    assert [r["method"] for r in server.requests] == ["PATCH"] * len(objects)
    paths = [r["path"] for r in server.requests]
    assert paths[0] == f"/api/v1/namespaces/{NS}"
    assert (
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings/kubeserve-deployer"
        in paths
    )
    assert f"/api/v1/namespaces/{NS}/resourcequotas/tenant-quota" in paths
    assert f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/default-deny" in paths
    for request, obj in zip(server.requests, objects, strict=True):
        assert request["content_type"].startswith("application/apply-patch+yaml")
        assert request["query"] == {"fieldManager": FIELD_MANAGER, "force": "true"}
        assert request["authorization"] == "Bearer t0ken"
        assert request["body"] == obj


@pytest.mark.parametrize(
    ("status", "transient"), [(409, True), (500, True), (503, True), (403, False), (422, False)]
)
async def test_http_failures_are_classified(
    api: tuple[FakeApiServer, Path], status: int, transient: bool
) -> None:
    server, kubeconfig = api
    server.fail_status = status
    cluster = await started(kubeconfig)
    try:
        with pytest.raises(ClusterError) as caught:
            await cluster.apply(tenant_objects(NS.removeprefix("user-"), KubernetesSettings())[:1])
    finally:
        await cluster.close()
    assert caught.value.status == status and caught.value.transient is transient
    assert f"simulated {status}" in str(caught.value)


async def test_a_hung_api_server_is_a_transient_timeout(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api
    server.hang = True
    cluster = await started(kubeconfig, request_timeout=0.5)
    try:
        with pytest.raises(ClusterError) as caught:
            await cluster.read_deployment(NS, "kubeserve-x")
    finally:
        await cluster.close()
    assert caught.value.transient


async def test_deployment_pods_and_events_are_read_into_domain_shapes(
    api: tuple[FakeApiServer, Path],
) -> None:
    server, kubeconfig = api
    server.deployments["kubeserve-d"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kubeserve-d", "namespace": NS, "generation": 3},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": "pods is forbidden: exceeded quota: tenant-quota",
                }
            ],
        },
    }
    container_status = {
        "name": "runtime",
        "image": "kubeserve/runtime-base:0.1.0",
        "imageID": "",
        "ready": False,
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }
    server.pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubeserve-d-1", "labels": {"kubeserve.io/revision": "2"}},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [container_status],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubeserve-d-2", "labels": {"kubeserve.io/revision": "2"}},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu.",
                    }
                ],
            },
        },
    ]
    server.events = [
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": NS},
            "involvedObject": {"kind": "ReplicaSet", "name": "kubeserve-d-5d8f"},
            "reason": "FailedCreate",
            "message": "exceeded quota: tenant-quota",
            "type": "Warning",
            "count": 3,
        },
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "e2", "namespace": NS},
            "involvedObject": {"kind": "Pod", "name": "someone-else"},
            "reason": "BackOff",
            "message": "not ours",
            "type": "Warning",
        },
    ]
    cluster = await started(kubeconfig)
    try:
        workload = await cluster.read_deployment(NS, "kubeserve-d")
        assert await cluster.read_deployment(NS, "kubeserve-missing") is None
        pods = await cluster.list_pods(NS, "app.kubernetes.io/instance=kubeserve-d")
        events = await cluster.list_warning_events(NS, "kubeserve-d")
        await cluster.delete_namespace(NS)
        await cluster.delete_namespace("missing")  # already gone: fine
    finally:
        await cluster.close()
    assert workload is not None and (workload.generation, workload.ready_replicas) == (3, 1)
    assert workload.condition("ReplicaFailure") == (
        "True",
        "FailedCreate",
        "pods is forbidden: exceeded quota: tenant-quota",
    )
    crashing, pending = pods
    assert crashing.revision == 2 and not crashing.ready and crashing.restarts == 4
    assert crashing.problem is not None and crashing.problem.reason == "CrashLoopBackOff"
    assert crashing.last_termination is not None
    assert (crashing.last_termination.reason, crashing.last_termination.exit_code) == (
        "OOMKilled",
        137,
    )
    assert pending.unschedulable == (
        "Unschedulable",
        "0/1 nodes are available: 1 Insufficient cpu.",
    )
    assert [(e.reason, e.count) for e in events] == [("FailedCreate", 3)]
    pod_query = next(r for r in server.requests if r["path"].endswith("/pods"))
    assert pod_query["query"]["labelSelector"] == "app.kubernetes.io/instance=kubeserve-d"
    event_query = next(r for r in server.requests if r["path"].endswith("/events"))
    assert event_query["query"]["fieldSelector"] == "type=Warning"
    deletes = [r for r in server.requests if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [
        f"/api/v1/namespaces/{NS}",
        "/api/v1/namespaces/missing",
    ]


async def test_leases_are_created_read_and_replaced_at_the_version_read(
    api: tuple[FakeApiServer, Path],
) -> None:
    server, kubeconfig = api
    cluster = await started(kubeconfig)
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    try:
        assert await cluster.read_lease("kubeserve", "kubeserve-deployer") is None
        created = await cluster.write_lease(
            "kubeserve", "kubeserve-deployer", LeaseRecord("a", 15, at, at)
        )
        assert created.resource_version and created.holder == "a" and created.renew_time == at
        read = await cluster.read_lease("kubeserve", "kubeserve-deployer")
        assert read == created
        renewed = await cluster.write_lease(
            "kubeserve", "kubeserve-deployer", dataclasses.replace(read, transitions=1)
        )
        assert renewed.resource_version != created.resource_version
        # Written at a version someone else already replaced: a transient 409.
        with pytest.raises(ClusterError) as caught:
            await cluster.write_lease("kubeserve", "kubeserve-deployer", created)
        assert caught.value.status == 409 and caught.value.transient
        await cluster.delete("Secret", NS, "kubeserve-d-artifacts")
        await cluster.delete("Secret", NS, "missing")  # already gone: fine
    finally:
        await cluster.close()
    writes = [r for r in server.requests if r["method"] in ("POST", "PUT")]
    assert [r["path"] for r in writes] == [
        "/apis/coordination.k8s.io/v1/namespaces/kubeserve/leases",
        "/apis/coordination.k8s.io/v1/namespaces/kubeserve/leases/kubeserve-deployer",
        "/apis/coordination.k8s.io/v1/namespaces/kubeserve/leases/kubeserve-deployer",
    ]
    assert writes[0]["body"]["spec"] == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 0,
        "acquireTime": "2026-01-02T03:04:05.123456Z",
        "renewTime": "2026-01-02T03:04:05.123456Z",
    }
    assert writes[1]["body"]["metadata"]["resourceVersion"] == created.resource_version
    deletes = [r["path"] for r in server.requests if r["method"] == "DELETE"]
    assert deletes == [
        f"/api/v1/namespaces/{NS}/secrets/kubeserve-d-artifacts",
        f"/api/v1/namespaces/{NS}/secrets/missing",
    ]
