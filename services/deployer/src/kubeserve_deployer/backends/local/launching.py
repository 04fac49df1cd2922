"""Starting one replica process: forked from the warm pool when it can be, else a plain
`python -m kubeserve_runtime` subprocess. Either way the replica leads a session of its own,
so it outlives a deployer restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from kubeserve_deployer.backends.local.config import LocalBackendConfig
from kubeserve_deployer.backends.local.environment import runtime_environment
from kubeserve_deployer.backends.local.pool_client import PoolUnavailable, WarmPool
from kubeserve_deployer.backends.local.state import Replica
from kubeserve_deployer.domain.model import DeploymentSpec, RevisionTarget

log = logging.getLogger(__name__)


def _open_log(path: Path) -> Any:
    return open(path, "ab")


class Launcher:
    def __init__(self, config: LocalBackendConfig, pool: WarmPool | None, state_dir: Path) -> None:
        self.config = config
        self.pool = pool
        self.state_dir = state_dir

    async def launch(
        self,
        spec: DeploymentSpec,
        rev: RevisionTarget,
        r: Replica,
        model_path: Path,
        log_path: Path,
        site: Path | None = None,
    ) -> tuple[int, str]:
        """Start the replica; returns (pid, launcher name)."""
        env = {"KUBESERVE_DEPLOYMENT_ID": str(spec.deployment_id)}
        if site is not None:
            # The version's own packages come first. A forked pool child has the pool's versions
            # imported already, so such a replica starts as a plain process instead.
            env["PYTHONPATH"] = str(site)
        if self.pool is not None and site is None:
            self.pool.ensure_running()
            if not self.pool.ready:
                # A fresh interpreter would spend about as long on imports as the pool still
                # needs: waiting for the pool is never slower than the fallback.
                await self.pool.wait_ready(self.config.pool_start_timeout)
            if self.pool.ready:
                try:
                    pid, _ = await self.pool.spawn(
                        model=str(model_path),
                        name=spec.name,
                        version=rev.version_tag,
                        port=r.port,
                        deployment_id=str(spec.deployment_id),
                        log=str(log_path),
                        pidfile=str(self.state_dir / f"{r.key}.pid"),
                        timings=str(self.state_dir / f"{r.key}.timings.json"),
                        graceful_seconds=max(1, int(self.config.stop_grace) - 1),
                        env=env,
                    )
                    return pid, "pool"
                except PoolUnavailable as exc:
                    log.warning("warm pool unavailable, starting a plain process: %s", exc)
        with _open_log(log_path) as out:
            proc = await asyncio.create_subprocess_exec(
                self.config.python,
                "-m",
                "kubeserve_runtime",
                "--model",
                str(model_path),
                "--name",
                spec.name,
                "--version",
                rev.version_tag,
                "--port",
                str(r.port),
                "--deployment-id",
                str(spec.deployment_id),
                "--log-level",
                "warning",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                env=runtime_environment(env),
            )
        return proc.pid, "process"
