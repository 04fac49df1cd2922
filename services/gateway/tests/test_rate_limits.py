"""Rate limits as a client lives with them: per API key (its own limit or the default), per
deployment, per IP only where nobody is authenticated; `RateLimit-*` headers; one budget
shared by two gateway processes through PostgreSQL, leased so the database is not asked on
every request."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from kubeserve_common.net import free_port
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import serve_app, wait_until_ready
from kubeserve_gateway.adapters.rate_store import PostgresBucketStore
from kubeserve_gateway.domain.ratelimit import Limit
from kubeserve_gateway.testing import FakeAuth, FakeDeployer


def add_key(auth: FakeAuth, user_id: str, limit: tuple[float, int] | None = None) -> str:
    """A valid API key of `user_id` in the fake auth, with its own rate limit if given."""
    secret = f"ks_{uuid.uuid4().hex}"
    auth.api_keys[secret] = {
        "user_id": user_id,
        "role": "user",
        "api_key_id": str(uuid.uuid4()),
        "deployment_ids": None,
        "rate_limit": {"requests_per_second": limit[0], "burst": limit[1]} if limit else None,
    }
    return secret


def key_header(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-remaining"] == "0"
    assert int(r.headers["ratelimit-reset"]) >= 1


# -- per key, with headers -------------------------------------------------------------------


async def test_one_keys_burst_does_not_throttle_another_and_headers_count_down(
    make_stack: Any,
) -> None:
    async with make_stack() as stack:
        slow = add_key(stack.auth, stack.user_id, (0.001, 3))
        other = add_key(stack.auth, stack.user_id)  # the default: 1000/s, burst 2000
        seen = []
        for _ in range(3):
            r = await stack.client.get("/api/v1/models", headers=key_header(slow))
            assert r.status_code == 200, r.text
            seen.append((r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"]))
            assert "retry-after" not in r.headers
        assert seen == [("3", "2"), ("3", "1"), ("3", "0")]
        r = await stack.client.get("/api/v1/models", headers=key_header(slow))
        assert_limited(r)
        assert "API key" in r.json()["error"]["message"]

        # The same user's other key, and their login session, have budgets of their own.
        for headers in (key_header(other), stack.bearer()):
            r = await stack.client.get("/api/v1/models", headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["ratelimit-limit"] == "2000"
            assert int(r.headers["ratelimit-remaining"]) == 1999


async def test_a_single_client_is_not_capped_at_100_requests_a_second(make_stack: Any) -> None:
    """The old per-IP bucket (100/s, burst 200) throttled everything behind one address; the
    default per key is well above it and the IP plays no part once authenticated."""
    async with make_stack(rate_limit_ip_rps=0.001, rate_limit_ip_burst=2) as stack:
        key = add_key(stack.auth, stack.user_id)
        for _ in range(250):
            r = await stack.client.get("/api/v1/models", headers=key_header(key))
            assert r.status_code == 200, r.text
        assert int(r.headers["ratelimit-remaining"]) >= 2000 - 250


async def test_the_ip_limit_guards_only_where_nobody_is_authenticated(make_stack: Any) -> None:
    async with make_stack(rate_limit_ip_rps=0.001, rate_limit_ip_burst=3) as stack:
        assert (await stack.client.post("/api/v1/auth/login", json={})).status_code == 200
        # A failed authentication spends the address's budget too (guessing keys)...
        bad = await stack.client.get("/api/v1/models", headers=key_header("ks_" + "x" * 40))
        assert bad.status_code == 401
        r = await stack.client.post("/api/v1/auth/register", json={})
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "0"
        assert_limited(await stack.client.post("/api/v1/auth/login", json={}))
        # ...so a guesser from this address now gets 429, not another try.
        r = await stack.client.get("/api/v1/models", headers=key_header("ks_" + "y" * 40))
        assert_limited(r)
        # A valid key from the same address is not affected.
        key = add_key(stack.auth, stack.user_id)
        r = await stack.client.get("/api/v1/models", headers=key_header(key))
        assert r.status_code == 200, r.text


# -- per deployment --------------------------------------------------------------------------


def replica_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, Any]:
        return {"predictions": [1]}

    return app


@pytest.fixture
def deployer() -> Iterator[tuple[FakeDeployer, str, str]]:
    with serve_app(replica_app()) as replica:
        fake = FakeDeployer()
        with serve_app(fake.app) as url:
            yield fake, url, replica


async def test_a_deployment_has_one_budget_for_all_its_callers(
    make_stack: Any, deployer: tuple[FakeDeployer, str, str]
) -> None:
    fake, url, replica = deployer
    async with make_stack(
        deployer_url=url, rate_limit_deployment_rps=0.001, rate_limit_deployment_burst=4
    ) as stack:
        mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
        fake.add(stack.user_id, [replica], deployment_id=mine)
        fake.add(stack.user_id, [replica], deployment_id=theirs)
        stranger = add_key(stack.auth, str(uuid.uuid4()))
        # Another tenant hammering the id gets 404s and spends nothing of this budget.
        for _ in range(6):
            r = await stack.client.post(f"/api/v1/predict/{mine}", headers=key_header(stranger))
            assert r.status_code == 404, r.text
        one, two = add_key(stack.auth, stack.user_id), add_key(stack.auth, stack.user_id)
        remaining = []
        for i in range(4):
            key = one if i % 2 == 0 else two
            r = await stack.client.post(f"/api/v1/predict/{mine}", headers=key_header(key))
            assert r.status_code == 200, r.text
            remaining.append(r.headers["ratelimit-remaining"])
        # The deployment's bucket is the tighter one, so its count is what the headers show.
        assert remaining == ["3", "2", "1", "0"]
        for key in (one, two):
            r = await stack.client.post(f"/api/v1/predict/{mine}", headers=key_header(key))
            assert_limited(r)
            assert "deployment" in r.json()["error"]["message"]
        # Another deployment of the same keys is not touched.
        r = await stack.client.post(f"/api/v1/predict/{theirs}", headers=key_header(one))
        assert r.status_code == 200, r.text


# -- shared through PostgreSQL ---------------------------------------------------------------


async def test_the_store_never_grants_more_than_the_bucket_holds(database_url: str) -> None:
    """Many concurrent takes (as from many replicas) on one bucket: exactly the burst."""
    import asyncio

    from kubeserve_common.db.migrations import upgrade
    from kubeserve_common.db.session import create_engine
    from kubeserve_gateway.bootstrap import MIGRATIONS

    await upgrade(MIGRATIONS, database_url, "gateway")
    engine = create_engine(database_url, "gateway", pool_size=10)
    try:
        store = PostgresBucketStore(engine)
        limit = Limit(0.001, 25)
        key = f"test:{uuid.uuid4()}"
        results = await asyncio.gather(*(store.take(key, limit, 2, 0) for _ in range(30)))
        assert sum(granted for granted, _ in results) == 25
        assert sorted(g for g, _ in results)[-13:] == [1] + [2] * 12
        # Tokens given back are there for the next taker, never beyond the burst.
        granted, left = await store.take(key, limit, 3, 3)
        assert (granted, round(left)) == (3, 0)
        granted, left = await store.take(key, limit, 100, 1000)
        assert (granted, round(left)) == (25, 0)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def gateway_processes(
    count: int, tmp_path: Path, database_url: str, upstream: str
) -> Iterator[list[str]]:
    """`count` gateway processes (`kubeserve-gateway serve`) on one database, started together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
    env.update(
        KUBESERVE_DEV_MODE="true",
        KUBESERVE_INTERNAL_SECRET=TEST_INTERNAL_SECRET,
        KUBESERVE_DATABASE_URL=database_url,
        KUBESERVE_BROKER_URL="memory://",
        KUBESERVE_AUTH_URL=upstream,
        KUBESERVE_REGISTRY_URL=upstream,
        KUBESERVE_DEPLOYER_URL=upstream,
        KUBESERVE_BUILDER_URL=upstream,
    )
    code = "from kubeserve_gateway.cli import main; main()"
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            port = free_port()
            home = tmp_path / f"gw-{port}"
            home.mkdir()
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", "--port", str(port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**env, "KUBESERVE_HOME": str(home)},
            )
            started.append((proc, f"http://127.0.0.1:{port}"))
        for proc, url in started:
            wait_until_ready(f"{url}/readyz", proc)
        yield [url for _, url in started]
    finally:
        for proc, _ in started:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_two_gateway_processes_share_one_budget(
    tmp_path: Path, database_url: str, echo: tuple[str, FakeAuth]
) -> None:
    upstream, auth = echo
    user = str(uuid.uuid4())
    key = add_key(auth, user, (0.001, 6))
    neighbour = add_key(auth, user, (0.001, 6))
    with gateway_processes(2, tmp_path, database_url, upstream) as (one, two):
        async with httpx.AsyncClient(timeout=30) as client:
            remaining = []
            for i in range(6):
                base = one if i % 2 == 0 else two
                r = await client.get(f"{base}/api/v1/models", headers=key_header(key))
                assert r.status_code == 200, r.text
                remaining.append(r.headers["ratelimit-remaining"])
            # Each answer counts what both gateways spent (alone, each would allow 6 more).
            assert remaining == ["5", "4", "3", "2", "1", "0"]
            for base in (one, two):
                assert_limited(await client.get(f"{base}/api/v1/models", headers=key_header(key)))
            # Another key's budget is untouched on both.
            for base in (one, two):
                r = await client.get(f"{base}/api/v1/models", headers=key_header(neighbour))
                assert r.status_code == 200, r.text


async def test_a_busy_key_leases_tokens_instead_of_asking_the_database_each_time(
    make_stack: Any, database_url: str
) -> None:
    async with make_stack(database_url=database_url, rate_limit_lease_ttl=600) as stack:
        assert stack.gateway.service.limits.limiter.shared
        key = add_key(stack.auth, stack.user_id)  # default: 1000/s, burst 2000 -> leases of 50

        async def store_calls() -> float:
            text = (await stack.client.get("/metrics")).text
            for line in text.splitlines():
                if line.startswith('kubeserve_gateway_rate_limit_store_calls_total{outcome="ok"}'):
                    return float(line.split()[-1])
            return 0.0

        before = await store_calls()
        for _ in range(200):
            r = await stack.client.get("/api/v1/models", headers=key_header(key))
            assert r.status_code == 200, r.text
        calls = await store_calls() - before
        assert 1 <= calls <= 200 / 50 + 2, calls


async def test_when_the_database_goes_away_each_gateway_limits_on_its_own(
    make_stack: Any, database_url: str, tcp_proxy: Any
) -> None:
    """Predictions must outlive the database (DESIGN 6): the limiter falls back to buckets in
    the process - still limiting, never failing the request."""
    from kubeserve_common.testing.plugin import address_of, pg_url_via

    proxy = tcp_proxy(*address_of(database_url, 5432))
    async with make_stack(database_url=pg_url_via(database_url, proxy)) as stack:
        key = add_key(stack.auth, stack.user_id, (0.001, 3))
        r = await stack.client.get("/api/v1/models", headers=key_header(key))
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "2"
        proxy.cut()
        codes = []
        for _ in range(4):
            r = await stack.client.get("/api/v1/models", headers=key_header(key))
            codes.append(r.status_code)
        # The local buckets start full: three more, then the limit holds without the store.
        assert codes == [200, 200, 200, 429], codes
        assert_limited(r)
