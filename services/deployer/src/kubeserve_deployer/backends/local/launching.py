"""Starting one replica process: forked from the warm pool when it can be, else a plain
`python -m kubeserve_runtime` subprocess. Either way the replica leads a session of its own,
so it outlives a deployer restart. With a sandbox spec, the pool's child confines itself after
the fork, and a plain process starts under `python -m kubeserve_runtime.sandbox`."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from kubeserve_common.net import free_port
from kubeserve_runtime.sandbox.spec import SandboxSpec

from kubeserve_deployer.backends.local.environment import runtime_environment
from kubeserve_deployer.backends.local.pool_client import PoolUnavailable, WarmPool
from kubeserve_deployer.backends.local.sandboxing import (
    ReplicaSandboxes,
    inner_model_path,
    tunables,
)
from kubeserve_deployer.backends.local.settings import LocalBackendSettings
from kubeserve_deployer.backends.local.state import Replica
from kubeserve_deployer.domain.deployments import DeploymentSpec, RevisionTarget

log = logging.getLogger(__name__)


def _open_log(path: Path) -> Any:
    return open(path, "ab")


class Launcher:
    def __init__(
        self,
        config: LocalBackendSettings,
        pool: WarmPool | None,
        state_dir: Path,
        sandboxes: ReplicaSandboxes | None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.state_dir = state_dir
        self.sandboxes = sandboxes

    async def launch(
        self,
        spec: DeploymentSpec,
        rev: RevisionTarget,
        r: Replica,
        model_path: Path,
        log_path: Path,
        site: Path | None = None,
    ) -> tuple[int, str]:
        """Start the replica; returns (pid, launcher name). Contained (the default), it serves
        on `r.socket`; the model's path is then the one inside the sandbox, and the
        environment the spec's alone. Else (the insecure opt-out) on `r.port`."""
        # The tenant labels the replica's metrics (one value per replica: "CPU per user").
        env = {
            "KUBESERVE_DEPLOYMENT_ID": str(spec.deployment_id),
            "KUBESERVE_TENANT_ID": str(spec.owner_id),
        }
        sandbox: SandboxSpec | None = None
        if self.sandboxes is not None:
            inner_env = {**tunables(os.environ), **env, "PYTHONUNBUFFERED": "1"}
            sandbox = self.sandboxes.spec(r.key, model_path.parent, site, inner_env)
            r.socket, r.port = sandbox.listen, None
        else:
            r.socket, r.port = None, free_port()
        model = inner_model_path(model_path.name) if sandbox is not None else str(model_path)
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
                        model=model,
                        name=spec.name,
                        version=rev.version_tag,
                        port=r.port,
                        deployment_id=str(spec.deployment_id),
                        log=str(log_path),
                        pidfile=str(self.state_dir / f"{r.key}.pid"),
                        timings=str(self.state_dir / f"{r.key}.timings.json"),
                        graceful_seconds=max(1, int(self.config.stop_grace) - 1),
                        env=env,
                        sandbox=sandbox.to_dict() if sandbox is not None else None,
                    )
                    return pid, "pool"
                except PoolUnavailable as exc:
                    log.warning("warm pool unavailable, starting a plain process: %s", exc)
        argv = [
            self.config.runtime_python,
            "-m",
            "kubeserve_runtime",
            "--model",
            model,
            "--name",
            spec.name,
            "--version",
            rev.version_tag,
            "--port",
            str(r.port or 0),
            "--deployment-id",
            str(spec.deployment_id),
            "--log-level",
            "info",  # startup and errors, timestamped: what `kubeserve logs` shows
        ]
        if sandbox is not None:
            # The sandbox's launcher confines itself, then execs the runtime inside; the pid
            # we get is its supervisor's, which lives exactly as long as the replica.
            prefix = [self.config.runtime_python, "-m", "kubeserve_runtime.sandbox", "--spec"]
            argv = [*prefix, sandbox.to_json(), "--", *argv]
            # Never the version's packages on the launcher's own path: it runs unconfined until
            # it has entered the sandbox (inside, the spec puts /site first).
            outer_env = {k: v for k, v in runtime_environment().items() if k != "PYTHONPATH"}
        else:
            outer_env = runtime_environment(env)
        with _open_log(log_path) as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                env=outer_env,
            )
        return proc.pid, "process"
