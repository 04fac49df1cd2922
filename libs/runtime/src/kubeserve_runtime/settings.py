"""The runtime's settings: arguments first, then `KUBESERVE_*` environment variables, then
defaults. Plain dataclass (not pydantic-settings): the runtime ships alone in the base image
and starts in a forked warm-pool child, where every import counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default  # unset or empty: the default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default  # unset or empty: the default


@dataclass
class RuntimeConfig:
    """Tunables of one replica.

    `tenant` labels the replica's metrics (one value per replica, so no cardinality cost);
    the deployer sets `KUBESERVE_TENANT_ID` in the replica's environment.
    """

    deployment_id: str = ""
    tenant: str = ""
    max_batch_size: int = 32
    max_batch_wait_ms: float = 0.0
    model_threads: int | None = None
    max_request_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides: Any) -> RuntimeConfig:
        config = cls(
            deployment_id=os.environ.get("KUBESERVE_DEPLOYMENT_ID", ""),
            tenant=os.environ.get("KUBESERVE_TENANT_ID", ""),
            max_batch_size=_env_int("KUBESERVE_MAX_BATCH_SIZE", cls.max_batch_size),
            max_batch_wait_ms=_env_float("KUBESERVE_MAX_BATCH_WAIT_MS", cls.max_batch_wait_ms),
            model_threads=_env_int("KUBESERVE_MODEL_THREADS", 0) or None,
            max_request_bytes=_env_int("KUBESERVE_MAX_REQUEST_BYTES", cls.max_request_bytes),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config
