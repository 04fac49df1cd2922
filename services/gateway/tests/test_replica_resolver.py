"""ReplicaResolver's cache: one deployer lookup for concurrent misses, background refresh before
expiry, never an answer older than the TTL, forget() after a refused connection."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kubeserve_common.security.principal import Principal
from kubeserve_gateway.adapters.deployer import DeployerUnavailable, DeploymentRoute
from kubeserve_gateway.domain.errors import UpstreamUnavailable
from kubeserve_gateway.domain.routes import RouteTable, default_routes
from kubeserve_gateway.services.replicas import ReplicaResolver

OWNER = uuid.uuid4()
DEPLOYMENT = str(uuid.uuid4())


class SlowDeployer:
    def __init__(self) -> None:
        self.calls = 0
        self.endpoints = ("http://127.0.0.1:1",)
        self.fail = False
        self.release = asyncio.Event()
        self.release.set()

    async def route(self, deployment_id: str) -> DeploymentRoute | None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise DeployerUnavailable("down")
        return DeploymentRoute(uuid.UUID(deployment_id), OWNER, "Running", self.endpoints)


def match():  # type: ignore[no-untyped-def]
    found = RouteTable(default_routes()).match("POST", f"/api/v1/predict/{DEPLOYMENT}")
    assert found is not None
    return found


PRINCIPAL = Principal(user_id=OWNER, role="user", auth="token")


async def test_concurrent_misses_share_one_lookup() -> None:
    deployer = SlowDeployer()
    deployer.release.clear()
    resolver = ReplicaResolver(deployer, ttl=5)
    waiting = [asyncio.create_task(resolver.candidates(match(), PRINCIPAL)) for _ in range(20)]
    await asyncio.sleep(0.01)
    deployer.release.set()
    answers = await asyncio.gather(*waiting)
    assert deployer.calls == 1
    assert all(a == ["http://127.0.0.1:1"] for a in answers)


async def test_refreshed_in_the_background_near_the_end_of_the_ttl() -> None:
    deployer = SlowDeployer()
    resolver = ReplicaResolver(deployer, ttl=1.0)
    await resolver.candidates(match(), PRINCIPAL)
    assert deployer.calls == 1
    await resolver.candidates(match(), PRINCIPAL)  # fresh: cached, no refresh
    assert deployer.calls == 1
    await asyncio.sleep(0.8)
    deployer.endpoints = ("http://127.0.0.1:2",)
    # In the last quarter of the TTL: answered from the cache at once, refreshed behind the request.
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:1"]
    await asyncio.sleep(0.01)
    assert deployer.calls == 2
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:2"]


async def test_a_failed_refresh_serves_until_expiry_then_the_request_sees_the_error() -> None:
    deployer = SlowDeployer()
    resolver = ReplicaResolver(deployer, ttl=1.0)
    await resolver.candidates(match(), PRINCIPAL)
    deployer.fail = True
    await asyncio.sleep(0.8)
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:1"]
    await asyncio.sleep(0.25)  # expired now
    with pytest.raises(UpstreamUnavailable):
        await resolver.candidates(match(), PRINCIPAL)


async def test_forget_starts_a_new_lookup_and_drops_the_older_answer() -> None:
    deployer = SlowDeployer()
    resolver = ReplicaResolver(deployer, ttl=5)
    deployer.release.clear()
    first = asyncio.create_task(resolver.candidates(match(), PRINCIPAL))
    await asyncio.sleep(0.01)
    resolver.forget(DEPLOYMENT)  # e.g. a replica refused while that lookup was under way
    deployer.endpoints = ("http://127.0.0.1:3",)
    second = asyncio.create_task(resolver.candidates(match(), PRINCIPAL))
    await asyncio.sleep(0.01)
    deployer.release.set()
    await asyncio.gather(first, second)
    assert deployer.calls == 2
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:3"]
    assert deployer.calls == 2
