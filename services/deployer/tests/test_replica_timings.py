"""The timings file a local replica writes (through a descriptor it holds while the tenant's
code loads) feeds the deployment's `cold_start`: whatever the tenant writes there, what is kept
is JSON PostgreSQL accepts (a NaN would fail the reconcile pass that writes it, and with it the
other deployments' status updates), and honest figures pass through."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kubeserve_deployer.backends.local.activity import Activity
from kubeserve_deployer.backends.local.state import Replica, read_json


@pytest.mark.parametrize(
    "written",
    [
        '{"load_ms": NaN, "app_ms": Infinity}',
        '{"load_ms": -Infinity, "app_ms": -5}',
        '{"load_ms": true, "app_ms": "12"}',
        '{"load_ms": 1e308, "app_ms": [1]}',
    ],
)
def test_hostile_timings_are_left_out(tmp_path: Path, written: str) -> None:
    (tmp_path / "t.json").write_text(written)
    child = read_json(tmp_path / "t.json") or {}
    replica = Replica(uuid.uuid4(), 1, 0)
    replica.timings = {"fetch_ms": 3.0, "spawn_ms": 2.0}
    timings = Activity().record_cold_start(replica, 0.5, child)
    assert "model_load_ms" not in timings and "app_ms" not in timings
    json.dumps(timings, allow_nan=False)  # what PostgreSQL's JSON takes
    assert timings["total_ms"] == 505.0


def test_honest_timings_are_kept() -> None:
    replica = Replica(uuid.uuid4(), 1, 0)
    timings = Activity().record_cold_start(replica, 0.1, {"load_ms": 12.5, "app_ms": 3})
    assert timings["model_load_ms"] == 12.5 and timings["app_ms"] == 3.0
