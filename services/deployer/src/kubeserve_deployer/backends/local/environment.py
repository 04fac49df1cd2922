"""What a runtime process may inherit from the deployer's environment: an allowlist. The
deployer's own settings (internal secret, database URL, S3 credentials) must never reach a
process that runs a tenant's pickle."""

from __future__ import annotations

import os

_ENV_ALLOWED = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"}
_ENV_ALLOWED_PREFIXES = ("LC_",)
_ENV_ALLOWED_SUFFIXES = ("_NUM_THREADS",)  # OMP/OPENBLAS/MKL thread counts
RUNTIME_TUNABLES = (
    "KUBESERVE_MAX_BATCH_SIZE",
    "KUBESERVE_MAX_BATCH_WAIT_MS",
    "KUBESERVE_MODEL_THREADS",
    "KUBESERVE_MAX_REQUEST_BYTES",
)


def runtime_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the warm pool and of runtime processes: the allowlisted part of ours
    plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in _ENV_ALLOWED
        or key in RUNTIME_TUNABLES
        or key.startswith(_ENV_ALLOWED_PREFIXES)
        or key.endswith(_ENV_ALLOWED_SUFFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}
