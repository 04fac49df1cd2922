"""Unit tests of the dashboard-facing pieces: events tickets, the events fan-out, prediction
stats and the static file resolution."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from kubeserve_common.events.catalog import VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import Principal
from kubeserve_gateway.api.dashboard import Dashboard
from kubeserve_gateway.domain.tickets import InvalidTicket, TicketIssuer
from kubeserve_gateway.services.events import EventHub, TooManyConnections
from kubeserve_gateway.services.prediction_stats import PredictionStats


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def uploaded(owner: str) -> CloudEvent:
    model, version = uuid.uuid4(), uuid.uuid4()
    payload = VersionUploaded(
        model_id=model,
        version_id=version,
        version_tag="v1",
        owner_id=uuid.UUID(owner),
        framework="sklearn",
        artifact_uri="s3://bucket/models/secret/path/model.joblib",
        filename="model.joblib",
        sha256="0" * 64,
        size=10,
    )
    return CloudEvent.create(
        payload, service="registry", subject=f"models/{model}/versions/1", tenant_id=owner
    )


# -- tickets ----------------------------------------------------------------------------------


def test_ticket_is_redeemed_once_for_its_user() -> None:
    issuer = TicketIssuer("secret", ttl=30)
    user = uuid.uuid4()
    ticket, ttl = issuer.issue(Principal(user_id=user))
    assert ttl == 30
    assert issuer.redeem(ticket).user_id == user
    with pytest.raises(InvalidTicket, match="already used"):
        issuer.redeem(ticket)


def test_ticket_expires() -> None:
    clock = Clock()
    issuer = TicketIssuer("secret", ttl=30, clock=clock)
    ticket, _ = issuer.issue(Principal(user_id=uuid.uuid4()))
    clock.now += 31
    with pytest.raises(InvalidTicket, match="expired"):
        issuer.redeem(ticket)


def test_ticket_cannot_be_forged_or_moved_to_another_user() -> None:
    issuer = TicketIssuer("secret")
    ticket, _ = issuer.issue(Principal(user_id=uuid.uuid4()))
    body, _, signature = ticket.partition(".")
    other = TicketIssuer("another secret").issue(Principal(user_id=uuid.uuid4()))[0]
    for bad in (
        other,  # signed with another key
        f"{other.partition('.')[0]}.{signature}",  # someone else's claims, this signature
        body,
        "",
        "x" * 600,
    ):
        with pytest.raises(InvalidTicket):
            issuer.redeem(bad)


def test_ticket_another_replica_accepts() -> None:
    user = uuid.uuid4()
    ticket, _ = TicketIssuer("shared").issue(Principal(user_id=user, role="admin"))
    principal = TicketIssuer("shared").redeem(ticket)
    assert principal.user_id == user and principal.role == "admin"


# -- events fan-out ---------------------------------------------------------------------------


async def test_hub_delivers_only_the_tenants_own_events_without_internal_locations() -> None:
    hub = EventHub()
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    a, b = hub.connect(alice), hub.connect(bob)
    await hub.handle(uploaded(alice))
    assert b.queue.empty()
    message = json.loads(a.queue.get_nowait() or "")
    assert message["type"] == "io.kubeserve.version.uploaded.v1"
    assert message["data"]["owner_id"] == alice
    assert "artifact_uri" not in message["data"]
    hub.disconnect(a)
    hub.disconnect(a)  # idempotent
    assert hub.connections == 1


async def test_hub_closes_a_slow_connection_and_keeps_the_others() -> None:
    hub = EventHub(queue_size=3)
    alice = str(uuid.uuid4())
    slow, fast = hub.connect(alice), hub.connect(alice)
    for _ in range(5):
        await hub.handle(uploaded(alice))
        while not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.overflowed and not fast.overflowed
    assert slow.queue.get_nowait() is None  # the end-of-stream marker, nothing else held
    assert slow.queue.empty()


async def test_hub_bounds_connections_per_user() -> None:
    hub = EventHub(max_per_user=2)
    alice = str(uuid.uuid4())
    hub.connect(alice)
    hub.connect(alice)
    with pytest.raises(TooManyConnections):
        hub.connect(alice)
    hub.connect(str(uuid.uuid4()))  # others are not affected
    await asyncio.sleep(0)


# -- prediction stats -------------------------------------------------------------------------


def test_stats_rate_errors_and_p95() -> None:
    clock = Clock(1_000_000.0)
    stats = PredictionStats(clock=clock)
    dep = str(uuid.uuid4())
    for i in range(100):
        stats.record(dep, 500 if i < 5 else 200, 0.004 if i < 95 else 0.3)
    clock.now += 10
    stats.record(dep, 200, 0.001)
    window = stats.window(dep, minutes=1)
    assert window["totals"] == {"requests": 101, "errors": 5, "error_rate": 0.0495, "p95_ms": 5.0}
    busy = window["points"][-2]
    assert busy["requests"] == 100 and busy["rps"] == 10.0 and busy["error_rate"] == 0.05
    assert len(window["points"]) == 6
    assert stats.window(str(uuid.uuid4()))["totals"]["requests"] == 0


def test_stats_forget_old_buckets_and_bound_deployments() -> None:
    clock = Clock()
    stats = PredictionStats(max_deployments=2, clock=clock)
    stats.record("a", 200, 0.01)
    clock.now += 3600
    stats.record("a", 200, 0.01)
    assert stats.window("a", minutes=30)["totals"]["requests"] == 1
    stats.record("b", 200, 0.01)
    stats.record("c", 200, 0.01)
    assert stats.window("a")["totals"]["requests"] == 0  # least recently used, dropped


# -- dashboard files --------------------------------------------------------------------------


def test_dashboard_resolution(tmp_path: Path) -> None:
    (tmp_path / "models" / "detail").mkdir(parents=True)
    (tmp_path / "index.html").write_text("home")
    (tmp_path / "404.html").write_text("not found")
    (tmp_path / "models" / "index.html").write_text("models")
    (tmp_path.parent / "secret.txt").write_text("no")
    dashboard = Dashboard(tmp_path)
    models = (tmp_path / "models" / "index.html").resolve()
    assert dashboard.resolve("") == (tmp_path / "index.html", 200)
    assert dashboard.resolve("models/") == (models, 200)
    assert dashboard.resolve("models/detail/some-id") == (models, 200)  # SPA fallback
    assert dashboard.resolve("no-such-route") == ((tmp_path / "404.html"), 404)
    assert dashboard.resolve("_next/static/missing.js") == (None, 404)
    assert dashboard.resolve("favicon.ico") == (None, 404)
    assert dashboard.resolve("../secret.txt") == (None, 404)
    assert dashboard.resolve("../../etc/passwd/x")[1] == 404
    assert not Dashboard(tmp_path / "absent").built


async def test_stopping_the_process_ends_every_stream_and_keeps_the_old_handler() -> None:
    import signal

    from kubeserve_gateway.api import shutdown
    from kubeserve_gateway.services.events import ShuttingDown

    hub = EventHub()
    conn = hub.connect(str(uuid.uuid4()))
    await hub.handle(uploaded(conn.user_id))
    calls: list[int] = []
    original_int = signal.getsignal(signal.SIGINT)
    original = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        shutdown.install_shutdown_hook(hub, asyncio.get_running_loop())
        shutdown.install_shutdown_hook(hub, asyncio.get_running_loop())  # idempotent
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0.05)
    finally:
        signal.signal(signal.SIGTERM, original)
        signal.signal(signal.SIGINT, original_int)
        shutdown._installed.clear()
    assert calls == [signal.SIGTERM]  # the previous handler still ran, once
    assert conn.queue.get_nowait() is None and not conn.overflowed  # "shutdown", queue cleared
    with pytest.raises(ShuttingDown):
        hub.connect(str(uuid.uuid4()))
