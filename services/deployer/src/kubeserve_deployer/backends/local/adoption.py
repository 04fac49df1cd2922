"""Re-adoption after a deployer restart: load the replicas a previous deployer recorded, mark
the live ones Starting (Ready again once their health answers) and the dead ones Crashed (the
next pass restarts them), and kill what wrote a pid file but was never recorded."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from pathlib import Path

from kubeserve_deployer.backends.local.identity import is_alive, signal_replica
from kubeserve_deployer.backends.local.state import Replica, read_json
from kubeserve_deployer.domain.deployments import ReplicaStatus

log = logging.getLogger(__name__)


def adopt_recorded(state_dir: Path) -> dict[str, Replica]:
    replicas: dict[str, Replica] = {}
    recorded: set[int] = set()
    for path in sorted(state_dir.glob("*.json")):
        if path.name.endswith(".timings.json"):
            continue
        data = read_json(path)
        if data is None:
            continue
        try:
            replica = Replica.from_file(data)
        except (KeyError, ValueError, TypeError):
            continue
        replica.adopted = True
        replica.started_mono = time.monotonic()
        if is_alive(replica.pid, replica.start_time):
            replica.status = ReplicaStatus.STARTING
            recorded.add(int(replica.pid or 0))
        else:
            replica.status = ReplicaStatus.CRASHED
            replica.next_restart = 0.0
            replica.last_error = replica.last_error or "not running after a deployer restart"
        replicas[replica.key] = replica
    # A child that wrote its pid file but whose spawn was never recorded (the deployer died in
    # between): nobody owns it, so it goes.
    for path in state_dir.glob("*.pid"):
        data = read_json(path) or {}
        pid = data.get("pid")
        if pid and pid not in recorded and is_alive(pid, data.get("start_time")):
            log.warning("killing unrecorded runtime process %s", pid)
            signal_replica(int(pid), signal.SIGKILL)
        if path.stem not in replicas:
            with contextlib.suppress(OSError):
                path.unlink()
    if replicas:
        log.info("re-adopting %d recorded replicas", len(replicas))
    return replicas
