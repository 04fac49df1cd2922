"""The sandbox of one replica, as a `SandboxSpec` (plain data: the control plane imports only
`kubeserve_runtime.sandbox.spec`; the warm pool's child or `python -m kubeserve_runtime.sandbox`
does the confining).

What a replica gets: a uid of its own (never root, never the platform's user when the platform
runs as root), its version's artifact directory at /model and wheelhouse at /site, both
read-only, the runtime's Python environment read-only, a private /tmp; no network (it serves on
the Unix socket `{sockets}/{id}/replica.sock`, created before confinement and inherited as a
descriptor); rlimits, and a memory / CPU / pids cgroup where the machine has a writable one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.security.sandbox_opt_out import OPT_OUT_ENV, OPT_OUT_FLAG
from kubeserve_runtime.sandbox.spec import MIB, Bind, CgroupLimits, Limits, SandboxSpec, Tmpfs

from kubeserve_deployer.backends.local.environment import RUNTIME_TUNABLES

log = logging.getLogger(__name__)

# Replica uids: 2,000,000 + a hash of the replica's key, far above any real account (and the
# sandbox probe's 1,999,999). Two replicas sharing a uid by chance still see nothing of each
# other (separate mount and PID namespaces); they would only share RLIMIT_NPROC's count.
UID_BASE = 2_000_000
UID_SPAN = 1_000_000
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less the terminating NUL


@dataclass(frozen=True)
class ReplicaLimits:
    memory_bytes: int
    cpu: float
    processes: int = 256
    open_files: int = 1024
    tmp_bytes: int = 64 * MIB


def _private_dir(directory: Path) -> None:
    """`directory`, ours alone (0700: only the platform's user reaches the sockets). The sockets'
    fallback has a predictable name in the shared temporary directory: one that already exists
    as a symlink or as another user's directory is refused, never chmod-ed or used."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(
            f"{directory} is not a directory of this user's (a symlink, or someone else's): "
            "refusing to put replica sockets there; remove it, or set a shorter runtime_dir"
        )
    os.chmod(directory, 0o700)


def replica_uid(key: str) -> int:
    digest = hashlib.sha256(key.encode()).digest()
    return UID_BASE + int.from_bytes(digest[:4], "big") % UID_SPAN


def _short(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class ReplicaSandboxes:
    """Directories and specs of replica sandboxes under `{runtime_dir}`."""

    def __init__(self, runtime_dir: Path, limits: ReplicaLimits) -> None:
        self.limits = limits
        self.roots = runtime_dir / "sandbox"
        sockets = runtime_dir / "sockets"
        if len(str(sockets)) + 40 > _SUN_PATH_MAX:
            # A Unix socket path is at most 107 bytes: a deep runtime directory gets its
            # sockets in a private directory of the temporary one instead.
            tag = hashlib.sha256(str(runtime_dir).encode()).hexdigest()[:12]
            sockets = Path(tempfile.gettempdir()) / f"kubeserve-sockets-{tag}"
        self.sockets = sockets

    def prepare(self) -> None:
        for directory in (self.roots, self.sockets):
            _private_dir(directory)

    def socket_path(self, key: str) -> Path:
        return self.sockets / _short(key) / "replica.sock"

    def spec(
        self, key: str, artifact_dir: Path, site: Path | None, env: dict[str, str]
    ) -> SandboxSpec:
        """The spec of replica `key`; creates its (empty) root and socket directories."""
        short = _short(key)
        root = self.roots / short
        shutil.rmtree(root, ignore_errors=True)  # a crashed predecessor's mount point
        root.mkdir(parents=True)
        socket_dir = self.socket_path(key).parent
        socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(socket_dir, 0o700)
        uid = replica_uid(key)
        binds = [Bind(str(artifact_dir), "/model")]
        inner_env = {**env, "HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin"}  # noqa: S108
        if site is not None:
            binds.append(Bind(str(site), "/site"))
            inner_env["PYTHONPATH"] = "/site"
        else:
            inner_env.pop("PYTHONPATH", None)
        inner_env.pop("VIRTUAL_ENV", None)
        lim = self.limits
        return SandboxSpec(
            uid=uid,
            gid=uid,
            root_dir=str(root),
            binds=tuple(binds),
            tmpfs=(Tmpfs("/tmp", lim.tmp_bytes), Tmpfs("/dev/shm", 16 * MIB)),  # noqa: S108
            hostname="replica",
            env=inner_env,
            limits=Limits(
                open_files=lim.open_files,
                processes=lim.processes,
                file_size_bytes=lim.tmp_bytes,
            ),
            cgroup=CgroupLimits(
                f"kubeserve-replica-{short}",
                memory_bytes=lim.memory_bytes,
                cpu=lim.cpu,
                pids_max=lim.processes,
            ),
            listen=str(self.socket_path(key)),
        )

    def cleanup(self, key: str) -> None:
        """Remove a stopped replica's socket and root directories."""
        shutil.rmtree(self.socket_path(key).parent, ignore_errors=True)
        root = self.roots / _short(key)
        if root.is_dir() and not os.path.ismount(root):
            shutil.rmtree(root, ignore_errors=True)


def inner_model_path(filename: str) -> str:
    return f"/model/{filename}"


def tunables(env: Mapping[str, str]) -> dict[str, str]:
    """The runtime tunables and thread counts of the deployer's environment a replica gets."""
    return {
        k: v
        for k, v in env.items()
        if k in RUNTIME_TUNABLES or k.endswith("_NUM_THREADS") or k.startswith("LC_")
    }


_PROBE_TIMEOUT = 60.0


def refusal(reason: str) -> str:
    """The one message a deploy gets on a machine that cannot sandbox: fail closed."""
    return (
        f"refusing to run uploaded models: this machine cannot sandbox them ({reason}). "
        "Fix: run the platform as root, or enable unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1; on Ubuntu also "
        "kernel.apparmor_restrict_unprivileged_userns=0); on a single-user laptop only, opt "
        f"out with `kubeserve up {OPT_OUT_FLAG}` ({OPT_OUT_ENV}=1)"
    )


async def probe_sandbox(python: str, env: dict[str, str]) -> tuple[str | None, tuple[str, ...]]:
    """Run `python -m kubeserve_runtime.sandbox --probe` once: (None, warnings) when a confined
    child was refused every hostile attempt, else (why not, ()). Warnings name what the sandbox
    holds without (no cgroup: no memory or CPU limit, rlimits only)."""
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "kubeserve_runtime.sandbox",
        "--probe",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _PROBE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"the sandbox probe did not finish within {_PROBE_TIMEOUT:g}s", ()
    try:
        result = json.loads(out)
    except ValueError:
        tail = err.decode(errors="replace").strip()[-300:]
        return f"the sandbox probe failed (exit {proc.returncode}): {tail}", ()
    if result.get("ok"):
        seen = result.get("seen") or {}
        return None, tuple(str(w) for w in seen.get("warnings") or ())
    return str(result.get("reason") or "the sandbox probe failed"), ()


class SandboxGate:
    """Fail closed: the probe runs once per process, in the background (about a second), and
    every replica start waits for its verdict; a machine that cannot sandbox gets `refusal`.
    What the sandbox holds without here is logged once and kept in `warnings` (never silent)."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.python = python
        self.env = env
        self.warnings: tuple[str, ...] = ()
        self._probe: asyncio.Task[str | None] | None = None

    def start(self) -> None:
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._verdict())

    async def _verdict(self) -> str | None:
        reason, self.warnings = await probe_sandbox(self.python, self.env)
        for warning in self.warnings:
            log.warning("replicas are sandboxed, but %s", warning)
        return reason

    async def refusal(self) -> str | None:
        """Why replicas may not start here, else None."""
        self.start()
        assert self._probe is not None
        try:
            reason = await asyncio.shield(self._probe)
        except Exception as exc:
            reason = f"the sandbox probe failed: {type(exc).__name__}: {exc}"
        return None if reason is None else refusal(reason)

    async def close(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
