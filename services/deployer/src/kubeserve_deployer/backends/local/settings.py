"""Settings of the local runtime backend: `DeployerSettings.local`, read from the environment by
their flat names `KUBESERVE_<FIELD>` (e.g. `KUBESERVE_USE_WARM_POOL`, as before the nested model)
or nested, `KUBESERVE_LOCAL_<FIELD>`. This model is the backend's configuration itself: the
backend and its launcher read it directly, so a new setting is one field here (and a line in the
deployer README).

Plain data (a frozen pydantic model). The runtime directory and a replica's limits come from the
deployer's own settings (`RUNTIME_DIR`, `REPLICA_CPU`, `REPLICA_MEMORY_MIB`, shared with the
quota), passed to the backend beside this model.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel, ConfigDict, Field


class LocalBackendSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    insecure_no_sandbox: bool = Field(
        default=False,
        description="KUBESERVE_INSECURE_NO_SANDBOX=1: run local replicas unconfined, as the "
        "platform's user, on TCP ports (single-user laptops only; `kubeserve up "
        "--insecure-no-sandbox`). Default: every replica is sandboxed, and a machine that "
        "cannot sandbox refuses to deploy.",
    )
    use_warm_pool: bool = Field(
        default=True, description="Fork replicas from a pre-imported pool (else plain processes)."
    )
    runtime_python: str = Field(
        default=sys.executable, description="Interpreter of the pool and runtime processes."
    )
    pool_start_timeout: float = Field(default=60.0, gt=0)
    pool_request_timeout: float = Field(default=10.0, gt=0)
    replica_start_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a replica may take to answer ready."
    )
    health_interval: float = Field(default=2.0, gt=0, description="Seconds between checks.")
    health_timeout: float = Field(default=1.0, gt=0)
    unhealthy_threshold: int = Field(
        default=3, ge=1, description="Failed checks in a row before a live replica is restarted."
    )
    restart_backoff_base: float = Field(default=0.5, gt=0)
    restart_backoff_max: float = Field(default=30.0, gt=0)
    stop_grace: float = Field(default=5.0, gt=0, description="SIGTERM to SIGKILL, seconds.")
    starting_poll_interval: float = Field(
        default=0.01, gt=0, description="Pass period while a replica is starting."
    )
    fetch_timeout: float = Field(default=300.0, gt=0, description="Artifact fetch, seconds.")
    stop_replicas_on_exit: bool = Field(
        default=False,
        description="Stop every replica when the deployer stops (default: they keep serving "
        "and the next deployer re-adopts them).",
    )

    def restart_delay(self, attempt: int) -> float:
        """Seconds before restart `attempt` (1, 2, ...): the base, doubling up to the max."""
        return min(self.restart_backoff_base * 2.0 ** (attempt - 1), self.restart_backoff_max)
