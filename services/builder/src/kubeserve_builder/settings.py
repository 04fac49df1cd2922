"""Settings of the builder service (environment variables `KUBESERVE_*`).

The artifact store comes from `ArtifactStoreSettings` (the same fields as the registry, so the
embedded mode shares one artifact directory). Everything about the sandboxed trial load, the
wheelhouse and the build queue is here with its default.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubeserve_common.storage.settings import ArtifactStoreSettings
from pydantic import Field

MIB = 1024 * 1024
GIB = 1024 * MIB

# services/builder/src/kubeserve_builder/settings.py -> the repository root (a source checkout).
_REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_BASE_PACKAGES = _REPO_ROOT / "images" / "base" / "frozen-packages.txt"


class BuilderSettings(ArtifactStoreSettings):
    port: int = 8083

    # -- the build queue ------------------------------------------------------------------------
    build_concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=64,
        description="Builds run at once, each trial in its own sandbox (default: the cores).",
    )
    build_poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between looks for queued builds when idle, at first; an upload "
        "wakes the builder at once, the look is a safety net.",
    )
    build_idle_max: float = Field(
        default=30.0,
        gt=0,
        description="The look for queued builds backs off to this many seconds while the "
        "queue stays empty.",
    )
    build_lease_seconds: float = Field(
        default=60.0,
        ge=2,
        description="A running build whose heartbeat is older than this is re-queued "
        "(the builder that ran it is presumed dead). Heartbeats come every third of it.",
    )
    build_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Interrupted or transiently failed runs of one build."
    )
    build_retry_delay: float = Field(
        default=10.0, ge=0, description="Seconds before a transiently failed build runs again."
    )

    # -- static checks --------------------------------------------------------------------------
    max_artifact_bytes: int = Field(default=2 * GIB, ge=1, description="Largest model file.")
    max_decompressed_bytes: int = Field(
        default=8 * GIB, ge=1, description="Largest decompressed joblib stream (zip bombs)."
    )
    reject_dangerous_globals: bool = Field(
        default=True,
        description="Fail a build whose pickle imports a known-dangerous global. Switching it "
        "off leaves the sandbox as the only defence (tests do that to prove the sandbox).",
    )

    # -- requirements and wheelhouse -------------------------------------------------------------
    base_packages_file: Path = Field(
        default=DEFAULT_BASE_PACKAGES,
        description="The base image's frozen package list (`name==version` lines).",
    )
    wheel_index_url: str = Field(
        default="https://pypi.org/simple", description="PEP 503 index the wheels come from."
    )
    wheel_find_links: str | None = Field(
        default=None,
        description="A directory or URL of wheels; when set, pip runs with --no-index on it.",
    )
    wheel_python_version: str | None = Field(
        default=None, description="Target Python of the runtime (e.g. 3.11); None: this one."
    )
    wheel_platforms: list[str] = Field(
        default_factory=list, description="Target platform tags (e.g. manylinux2014_x86_64)."
    )
    pip_timeout_seconds: float = Field(default=600.0, gt=0, description="Whole pip download.")
    pip_network_timeout: float = Field(default=30.0, gt=0, description="pip's socket timeout.")
    max_wheelhouse_bytes: int = Field(default=2 * GIB, ge=1)

    # -- cold-start prediction (documented in services/pipeline.py) ----------------------------
    cold_start_base_ms: float = Field(
        default=2500.0, ge=0, description="Base-image runtime start with no extra package."
    )
    cold_start_per_wheel_ms: float = Field(default=400.0, ge=0)
    cold_start_per_mib_ms: float = Field(default=60.0, ge=0, description="Per MiB of wheels.")

    # -- the sandboxed trial load --------------------------------------------------------------
    insecure_no_sandbox: bool = Field(
        default=False,
        description="Load models in the trial WITHOUT the sandbox (limits and timeout only) "
        "where the machine cannot sandbox: single-user machines only (`kubeserve up "
        "--insecure-no-sandbox` sets KUBESERVE_INSECURE_NO_SANDBOX=1). Off: such a machine "
        "refuses every build with the reason and the fix.",
    )
    trial_python: str | None = Field(
        default=None, description="Interpreter for the trial child; None: this one."
    )
    trial_memory_bytes: int = Field(
        default=int(1.5 * GIB), ge=256 * MIB, description="RLIMIT_AS of the child."
    )
    trial_cpu_seconds: int = Field(default=60, ge=1, description="RLIMIT_CPU of the child.")
    trial_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Wall clock, then the child's process group is killed."
    )
    trial_max_file_bytes: int = Field(
        default=64 * MIB, ge=MIB, description="RLIMIT_FSIZE: largest file the child may write."
    )
    trial_max_processes: int = Field(
        default=64, ge=8, description="RLIMIT_NPROC (threads count) of the unprivileged child."
    )
    trial_uid: int = Field(
        default=1_900_000,
        ge=1000,
        description="User the first trial runs as inside its sandbox (concurrent trials take "
        "the next ones; none is a real account).",
    )
    require_smoke_prediction: bool = Field(
        default=False,
        description="Fail a build whose predict() raises on the all-zero row (off: a warning, "
        "since zeros are not valid input for every model, e.g. categorical pipelines).",
    )
