"""A coordination.k8s.io/v1 Lease as leader election reads it, and the rule for taking it (the
one client-go's leader election follows). Plain data and pure functions; leader.py does the I/O.

The rule never compares clocks across machines: a candidate measures, on its own monotonic
clock, how long the Lease it sees has gone unchanged. The holder stops acting `renew_deadline`
after the start of its last successful renewal; a candidate takes over only once the Lease has
not changed for `lease_duration` since it first saw that version. With renew_deadline <
lease_duration, the old leader has stopped before a new one starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

LEASE_API = "coordination.k8s.io/v1"


@dataclass(frozen=True)
class LeaseRecord:
    holder: str  # "" when the last holder released it
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str | None = None  # optimistic concurrency: a write of a stale one fails


def format_micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def lease_object(namespace: str, name: str, record: LeaseRecord) -> dict[str, Any]:
    """The Lease to create (no resourceVersion) or replace (the one it was read with)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "kubeserve-deployer"},
    }
    if record.resource_version is not None:
        metadata["resourceVersion"] = record.resource_version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = format_micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = format_micro_time(record.renew_time)
    return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": metadata, "spec": spec}


def record_of(lease: dict[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=parse_micro_time(spec.get("acquireTime")),
        renew_time=parse_micro_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=(lease.get("metadata") or {}).get("resourceVersion"),
    )


def held_by_another(
    current: LeaseRecord, me: str, observed_at: float, now: float, default_duration: float
) -> bool:
    """Whether `current` (first seen at `observed_at`, monotonic seconds) still belongs to
    someone else at `now`. A released Lease (no holder) is free at once."""
    if not current.holder or current.holder == me:
        return False
    duration = current.duration_seconds or default_duration
    return observed_at + duration > now


def claim(current: LeaseRecord | None, me: str, duration: int, wall: datetime) -> LeaseRecord:
    """The record that takes (or renews) the Lease for `me`."""
    if current is None:
        return LeaseRecord(me, duration, acquire_time=wall, renew_time=wall, transitions=0)
    renewing = current.holder == me
    return replace(
        current,
        holder=me,
        duration_seconds=duration,
        acquire_time=current.acquire_time if renewing and current.acquire_time else wall,
        renew_time=wall,
        transitions=current.transitions if renewing else current.transitions + 1,
    )


def released(current: LeaseRecord, wall: datetime) -> LeaseRecord:
    """What a holder stepping down writes: no holder, so a candidate need not wait it out."""
    return replace(current, holder="", duration_seconds=1, renew_time=wall)
