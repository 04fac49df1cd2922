"""ReplicaResolver's cache: one deployer lookup for concurrent misses, background refresh before
expiry, forget() after a refused connection, the last known route while the deployer is away
(bounded), and deployment events pushing changes in."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kubeserve_common.contracts.deployer import DeploymentRoute
from kubeserve_common.errors import NotFound
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import Principal
from kubeserve_gateway.adapters.deployer import DeployerUnavailable
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
        return DeploymentRoute(
            deployment_id=uuid.UUID(deployment_id),
            owner_id=OWNER,
            status="Running",
            revision=1,
            ready_replicas=len(self.endpoints),
            endpoints=self.endpoints,
        )


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


async def test_while_the_deployer_is_away_the_last_known_route_serves_up_to_max_stale() -> None:
    deployer = SlowDeployer()
    now = [0.0]
    resolver = ReplicaResolver(deployer, ttl=1.0, max_stale=60, clock=lambda: now[0])
    await resolver.candidates(match(), PRINCIPAL)
    deployer.fail = True
    for moment in (2.0, 30.0, 59.0):  # expired, the lookup fails: the last known route serves
        now[0] = moment
        assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:1"]
    calls = deployer.calls
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:1"]
    assert deployer.calls == calls  # asked again after a TTL, not on every request
    now[0] = 61.5  # more than max_stale since the deployer last confirmed it
    with pytest.raises(UpstreamUnavailable):
        await resolver.candidates(match(), PRINCIPAL)
    deployer.fail = False
    now[0] = 63.0
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:1"]


async def test_a_deployment_never_looked_up_fails_while_the_deployer_is_away() -> None:
    deployer = SlowDeployer()
    deployer.fail = True
    resolver = ReplicaResolver(deployer, ttl=1.0, max_stale=60)
    with pytest.raises(UpstreamUnavailable):
        await resolver.candidates(match(), PRINCIPAL)


def _event(kind: str, **data: object) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/kubeserve/deployer",
        type=f"io.kubeserve.deployment.{kind}.v1",
        data={"deployment_id": DEPLOYMENT, "owner_id": str(OWNER), **data},
    )


async def test_events_push_new_endpoints_and_a_deletion_stops_at_once() -> None:
    deployer = SlowDeployer()
    now = [0.0]
    resolver = ReplicaResolver(deployer, ttl=5.0, max_stale=600, clock=lambda: now[0])
    await resolver.candidates(match(), PRINCIPAL)
    deployer.fail = True  # the deployer's database is away from here on
    await resolver.handle_event(
        _event("ready", endpoints=["http://127.0.0.1:7/"], revision=2, url="u", ready_replicas=1)
    )
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:7"]
    now[0] = 100.0  # long expired: the pushed route is the last known one
    assert await resolver.candidates(match(), PRINCIPAL) == ["http://127.0.0.1:7"]
    await resolver.handle_event(_event("deleted"))
    with pytest.raises(NotFound):
        await resolver.candidates(match(), PRINCIPAL)
    now[0] = 200.0  # and it stays deleted, deployer or not
    with pytest.raises(NotFound):
        await resolver.candidates(match(), PRINCIPAL)


async def test_a_scaled_deployment_is_looked_up_again_at_once() -> None:
    deployer = SlowDeployer()
    resolver = ReplicaResolver(deployer, ttl=60.0)
    await resolver.candidates(match(), PRINCIPAL)
    deployer.endpoints = ("http://127.0.0.1:1", "http://127.0.0.1:2")
    await resolver.handle_event(_event("scaled", replicas=2))
    assert sorted(await resolver.candidates(match(), PRINCIPAL)) == [
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    ]
    assert deployer.calls == 2


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
