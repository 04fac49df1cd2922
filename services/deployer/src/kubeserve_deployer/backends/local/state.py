"""Replica records and the files they live in: `{runtime_dir}/replicas/{key}.json` (written by
the backend right after the spawn, the ground truth a restarted deployer re-adopts from),
`{key}.pid` (written by the forked child before it loads anything) and `{key}.timings.json`
(the model's load time, written by the replica)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from kubeserve_deployer.domain.deployments import ReplicaStatus, ReplicaView, storable


@dataclass
class Replica:
    deployment_id: UUID
    revision: int
    index: int
    status: ReplicaStatus = ReplicaStatus.STARTING
    pid: int | None = None
    start_time: int | None = None
    port: int | None = None
    socket: str | None = None  # a contained replica serves on a Unix socket, never on a port
    launcher: str | None = None
    restarts: int = 0
    failures: int = 0  # consecutive crashes since the replica was last ready
    fetch_failures: int = 0  # consecutive artifact fetch failures (not the model's fault)
    ever_ready: bool = False
    last_error: str | None = None
    start_id: str | None = None  # one per spawn: the cold-start estimator learns a start once
    cold_start: dict[str, float] | None = None  # what this start measured, once it was ready
    # In-memory only (monotonic clock).
    started_mono: float = 0.0
    next_restart: float = 0.0
    last_health: float = 0.0
    health_failures: int = 0
    adopted: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.deployment_id}.{self.revision}.{self.index}"

    @property
    def key_label(self) -> str:
        return f"r{self.revision}/{self.index}"

    @property
    def endpoint(self) -> str | None:
        if self.socket:
            return f"unix:{self.socket}"
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def where(self) -> str:
        return f"socket {self.socket}" if self.socket else f"port {self.port}"

    def to_file(self) -> dict[str, Any]:
        return {
            "deployment_id": str(self.deployment_id),
            "revision": self.revision,
            "index": self.index,
            "pid": self.pid,
            "start_time": self.start_time,
            "port": self.port,
            "socket": self.socket,
            "launcher": self.launcher,
            "restarts": self.restarts,
            "failures": self.failures,
            "ever_ready": self.ever_ready,
            "last_error": self.last_error,
            "start_id": self.start_id,
            "cold_start": self.cold_start,
        }

    @classmethod
    def from_file(cls, data: dict[str, Any]) -> Replica:
        return cls(
            deployment_id=UUID(data["deployment_id"]),
            revision=int(data["revision"]),
            index=int(data["index"]),
            pid=data.get("pid"),
            start_time=data.get("start_time"),
            port=data.get("port"),
            socket=data.get("socket"),
            launcher=data.get("launcher"),
            restarts=int(data.get("restarts", 0)),
            failures=int(data.get("failures", 0)),
            ever_ready=bool(data.get("ever_ready", False)),
            last_error=data.get("last_error"),
            start_id=data.get("start_id") if isinstance(data.get("start_id"), str) else None,
            cold_start=_timings(data.get("cold_start")),
        )

    def view(self) -> ReplicaView:
        return ReplicaView(
            deployment_id=self.deployment_id,
            revision=self.revision,
            index=self.index,
            status=self.status,
            endpoint=self.endpoint if self.status is ReplicaStatus.READY else None,
            pid=self.pid,
            port=self.port,
            restarts=self.restarts,
            launcher=self.launcher,
            last_error=self.last_error,
            ever_ready=self.ever_ready,
            start_id=self.start_id,
            timings=dict(self.cold_start) if self.cold_start else None,
        )


def _timings(value: object) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    } or None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def log_tail(path: Path, limit: int = 2000) -> str:
    """The last meaningful lines of a replica's log: why it died, in its own words."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in storable(text).splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]
