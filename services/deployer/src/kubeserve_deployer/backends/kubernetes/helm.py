"""The Helm port (releases of charts/model-serving) and its pyhelm3 adapter.

pyhelm3 drives the `helm` CLI and asserts the binary on PATH when its client is built, so it is
imported when the adapter starts: a deployer on the local backend runs without helm. Commands
never `--wait` (the reconcile loop polls the rollout instead of holding a helm process for
minutes) and each one is bounded by `asyncio.wait_for` (pyhelm3 terminates the helm process when
cancelled). Failures become `HelmError`, transient or permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str
    revision: int  # Helm's own revision counter (not KubeServe's)
    status: str  # deployed, failed, pending-install, pending-upgrade, pending-rollback, ...
    values: dict[str, Any] | None = field(default=None, compare=False)  # user-supplied values
    description: str = ""


class HelmError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class HelmPort(Protocol):
    async def start(self) -> None:
        """Check the helm binary and load the chart's metadata."""

    async def install_or_upgrade(
        self, name: str, namespace: str, values: dict[str, Any], *, description: str = ""
    ) -> HelmRelease:
        """`helm upgrade --install` of the model-serving chart, without waiting for the rollout."""

    async def rollback(self, name: str, namespace: str, revision: int | None = None) -> None:
        """`helm rollback` to a Helm revision (None: the previous one)."""

    async def uninstall(self, name: str, namespace: str) -> None:
        """`helm uninstall`; a missing release is not an error."""

    async def list_releases(self) -> list[HelmRelease]:
        """Releases in every namespace, whatever their status (values not included)."""

    async def status(self, name: str, namespace: str) -> HelmRelease | None:
        """The current revision with its values, None when there is no such release."""


# stderr fragments that mean "try again" and "retrying as is cannot help".
_TRANSIENT = (
    "another operation (install/upgrade/rollback) is in progress",
    "connection refused",
    "i/o timeout",
    "timed out",
    "tls handshake timeout",
    "the server is currently unable",
    "etcdserver",
    "too many requests",
    "the object has been modified",
    "internal error",
    "context deadline exceeded",
    "eof",
)
_PERMANENT = ("forbidden", "is invalid", "exceeded quota", "values don't meet the specifications")


# Refusals an operator fixes once for the whole cluster, with the fix named.
_HINTS = {
    'no matches for kind "ServiceMonitor"': "the cluster has no Prometheus Operator CRDs: "
    "install kube-prometheus-stack, or set KUBESERVE_K8S_SERVICE_MONITOR=false",
}


def explain(stderr: str) -> str:
    for fragment, hint in _HINTS.items():
        if fragment in stderr:
            return f"{stderr} ({hint})"
    return stderr


def classify_helm_error(stderr: str) -> bool:
    """True when a failed helm command may succeed if retried as is."""
    text = stderr.lower()
    if any(fragment in text for fragment in _PERMANENT):
        return False
    return any(fragment in text for fragment in _TRANSIENT)


def _release_from_status(status: dict[str, Any]) -> HelmRelease:
    info = status.get("info") or {}
    return HelmRelease(
        name=status["name"],
        namespace=status.get("namespace", ""),
        revision=int(status.get("version", 0)),
        status=str(info.get("status", "unknown")),
        values=status.get("config") or {},
        description=str(info.get("description") or ""),
    )


def _bounded_command_class() -> type:
    """pyhelm3's Command, run without a shell in a process group of its own.

    pyhelm3 starts `sh -c "helm ..."` and, when cancelled, terminates the shell and then waits
    for the pipes to close - which a still-running helm child keeps open, so a hung helm would
    outlive any timeout. This subclass keeps pyhelm3's argv building and error types but execs
    helm directly and kills its whole group on cancellation, so `asyncio.wait_for` really bounds
    each command."""
    from pyhelm3 import Command, errors  # type: ignore[import-untyped]

    class BoundedCommand(Command):  # type: ignore[misc]
        async def run(self, command: list[Any], input: bytes | None = None) -> bytes:
            argv = [self._executable, *(str(part) for part in command)]
            if self._kubeconfig:
                argv += ["--kubeconfig", str(self._kubeconfig)]
            if self._kubecontext:
                argv += ["--kube-context", self._kubecontext]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            try:
                stdout, stderr = await proc.communicate(input)
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
                raise
            if proc.returncode == 0:
                return stdout
            text = stderr.decode(errors="replace").lower()
            if "context canceled" in text:
                error_cls = errors.CommandCancelledError
            elif "etcdserver" in text:
                error_cls = errors.ConnectionError
            elif "release: not found" in text:
                error_cls = errors.ReleaseNotFoundError
            elif "failed to render chart" in text or "execution error" in text:
                error_cls = errors.FailedToRenderChartError
            elif "is invalid" in text:
                error_cls = errors.InvalidResourceError
            else:
                error_cls = errors.Error
            raise error_cls(proc.returncode, stdout, stderr)

    return BoundedCommand


class Pyhelm3Helm:
    """`HelmPort` over pyhelm3 (the helm CLI)."""

    def __init__(
        self,
        chart_path: Path,
        *,
        executable: str = "helm",
        timeout: float = 120.0,
        kubeconfig: Path | None = None,
        kubecontext: str | None = None,
        history_max: int = 10,
    ) -> None:
        self.chart_path = Path(chart_path).resolve()
        self.executable = executable
        self.timeout = timeout
        self.kubeconfig = kubeconfig
        self.kubecontext = kubecontext
        self.history_max = history_max
        self._client: Any = None
        self._command: Any = None
        self._chart: Any = None

    async def start(self) -> None:
        if self._client is not None:
            return
        if shutil.which(self.executable) is None:
            raise HelmError(
                f"the kubernetes backend needs the helm binary ({self.executable!r} is not on "
                "PATH; the deployer image ships it)",
                transient=False,
            )
        if not (self.chart_path / "Chart.yaml").is_file():
            raise HelmError(
                f"no chart at {self.chart_path} (KUBESERVE_K8S_CHART_PATH)", transient=False
            )
        from pyhelm3 import Client  # asserts helm on PATH: only this backend needs it

        self._command = _bounded_command_class()(
            executable=self.executable,
            kubeconfig=self.kubeconfig,
            kubecontext=self.kubecontext,
            history_max_revisions=self.history_max,
            default_timeout=f"{int(self.timeout)}s",
        )
        # Client() runs `helm version` synchronously: keep it off the event loop.
        self._client = await asyncio.to_thread(Client, self._command, executable=self.executable)
        self._chart = await self._run("helm show chart", self._client.get_chart(self.chart_path))

    async def _run(self, what: str, coro: Any) -> Any:
        from pyhelm3 import errors

        try:
            return await asyncio.wait_for(coro, self.timeout)
        except TimeoutError as exc:
            raise HelmError(f"{what}: no answer within {self.timeout:g}s", transient=True) from exc
        except errors.ReleaseNotFoundError:
            raise
        except (errors.ConnectionError, errors.CommandCancelledError) as exc:
            raise HelmError(f"{what}: {exc}".strip(), transient=True) from exc
        except (errors.FailedToRenderChartError, errors.InvalidResourceError) as exc:
            raise HelmError(f"{what}: {exc}".strip(), transient=False) from exc
        except errors.Error as exc:
            message = explain(str(exc).strip())
            raise HelmError(f"{what}: {message}", transient=classify_helm_error(message)) from exc

    def _require(self) -> Any:
        if self._client is None:
            raise HelmError("helm is not started", transient=True)
        return self._client

    async def install_or_upgrade(
        self, name: str, namespace: str, values: dict[str, Any], *, description: str = ""
    ) -> HelmRelease:
        client = self._require()
        revision = await self._run(
            f"helm upgrade --install {name}",
            client.install_or_upgrade_release(
                name,
                self._chart,
                values,
                namespace=namespace,
                # Provisioning owns the namespace (labels, quota, policies): helm must not
                # create a bare one.
                create_namespace=False,
                description=description or None,
                timeout=f"{int(self.timeout)}s",
                wait=False,
            ),
        )
        status = revision.status.value if hasattr(revision.status, "value") else revision.status
        return HelmRelease(
            name=name,
            namespace=namespace,
            revision=int(revision.revision),
            status=str(status),
            values=values,
            description=description,
        )

    async def rollback(self, name: str, namespace: str, revision: int | None = None) -> None:
        self._require()
        await self._run(
            f"helm rollback {name}",
            self._command.rollback(
                name, revision, namespace=namespace, timeout=f"{int(self.timeout)}s", wait=False
            ),
        )

    async def uninstall(self, name: str, namespace: str) -> None:
        from pyhelm3 import errors

        self._require()
        try:
            await self._run(
                f"helm uninstall {name}",
                self._command.uninstall(
                    name, namespace=namespace, timeout=f"{int(self.timeout)}s", wait=False
                ),
            )
        except errors.ReleaseNotFoundError:
            return

    async def list_releases(self) -> list[HelmRelease]:
        client = self._require()
        rows = await self._run(
            "helm list",
            client.list_release_definitions(
                all_namespaces=True,
                include_deployed=True,
                include_failed=True,
                include_pending=True,
                include_superseded=False,
                include_uninstalling=True,
                max_releases=10_000,  # far above any cluster's count of deployments
            ),
        )
        return [
            HelmRelease(
                name=row["name"],
                namespace=row.get("namespace", ""),
                revision=int(row.get("revision", 0) or 0),
                status=str(row.get("status", "unknown")),
            )
            for row in rows
        ]

    async def status(self, name: str, namespace: str) -> HelmRelease | None:
        from pyhelm3 import errors

        self._require()
        try:
            status = await self._run(
                f"helm status {name}", self._command.status(name, namespace=namespace)
            )
        except errors.ReleaseNotFoundError:
            return None
        return _release_from_status(status)
