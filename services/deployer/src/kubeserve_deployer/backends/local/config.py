"""Settings of the local backend as its modules need them (built from `DeployerSettings`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalBackendConfig:
    runtime_dir: Path
    python: str
    use_pool: bool = True
    pool_start_timeout: float = 60.0
    pool_request_timeout: float = 10.0
    start_timeout: float = 60.0
    health_interval: float = 2.0
    health_timeout: float = 1.0
    unhealthy_threshold: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stop_grace: float = 5.0
    starting_poll: float = 0.01
    fetch_timeout: float = 300.0
    stop_on_close: bool = False
    # Every replica runs in the sandbox; False only with the explicit opt-out
    # (KUBESERVE_INSECURE_NO_SANDBOX=1): replicas then run as the platform's user, on TCP.
    sandbox: bool = True
    replica_memory_bytes: int = 768 * 1024 * 1024
    replica_cpu: float = 0.4
