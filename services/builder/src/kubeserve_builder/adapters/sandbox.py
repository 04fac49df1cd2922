"""The sandbox the trial load runs in: a child process with resource limits, a wall-clock
timeout that kills its whole process group, a minimal environment, and - with bubblewrap -
no network, a read-only view of only the interpreter's files and a throwaway tmpfs to write in.

Modes (recorded in every build report):
- `bwrap`: bubblewrap with every namespace unshared (network: loopback only, pid, ipc, uts,
  user), the model bound read-only at /model, writable tmpfs only at /sandbox and /tmp (size-capped,
  gone when the child ends), capabilities dropped, uid 65534 inside.
- `unshare`: `unshare --net` (root only): no network, but the host filesystem as the builder's
  user sees it - a weak sandbox for development machines without bubblewrap.
- `none`: limits and timeout only.

Limits are set with setrlimit between fork and exec (RLIMIT_AS, _CPU, _FSIZE, _NPROC, _CORE=0,
_NOFILE). RLIMIT_NPROC does not bind a child whose real user is root (the kernel exempts it), so
run the builder as a non-root user in production; the pid namespace and the timeout still reap
every process the model starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_STDOUT_CAP = 1 * MIB  # the trial prints one JSON line; more is noise or an attack
_STDERR_TAIL = 4096
_PROBE_TIMEOUT = 60.0
_KILL_GRACE = 10.0
# Only these reach the child: no credentials, no proxy settings, no PYTHON* knobs.
_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}


class SandboxUnavailable(Exception):
    """The required isolation cannot be had on this machine."""


@dataclass(frozen=True)
class TrialLimits:
    memory_bytes: int
    cpu_seconds: int
    timeout_seconds: float
    max_file_bytes: int
    max_processes: int
    uid: int = 65534


@dataclass
class SandboxInfo:
    mode: str
    isolates_filesystem: bool
    isolates_network: bool
    runs_as: str
    detail: str = ""

    @property
    def strong(self) -> bool:
        return self.isolates_filesystem and self.isolates_network

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "isolates_filesystem": self.isolates_filesystem,
            "isolates_network": self.isolates_network,
            "runs_as": self.runs_as,
            "detail": self.detail,
        }


@dataclass
class ProcessOutcome:
    returncode: int | None
    timed_out: bool
    stdout: bytes
    stderr_tail: str
    duration_ms: float
    stdout_truncated: bool = False


@dataclass
class TrialOutcome:
    process: ProcessOutcome
    result: dict[str, Any] | None
    limits: TrialLimits
    sandbox: SandboxInfo
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def signal_number(self) -> int | None:
        rc = self.process.returncode
        if rc is None:
            return None
        if rc < 0:
            return -rc
        # bubblewrap reports a child killed by a signal as 128 + the signal.
        if self.sandbox.mode == "bwrap" and rc > 128 and self.result is None:
            return rc - 128
        return None


def _tasks_of_user(uid: int) -> int:
    """Processes + threads the user runs now: RLIMIT_NPROC counts them all, the builder's own
    threads included, so the child's allowance comes on top."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                status = fh.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def _limits_preexec(limits: TrialLimits, nproc: int) -> Callable[[], None]:
    """setrlimit in the forked child before exec (no locks, no allocation-heavy work)."""

    def apply() -> None:
        cpu = limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    return apply


def _read_paths(python: str) -> list[str]:
    """Directories the interpreter needs (prefixes and import path), asked of the interpreter
    itself - trusted code, run once, before any tenant file is involved."""
    probe = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [
            python,
            "-I",
            "-c",
            "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix,"
            " sys.exec_prefix, sys.base_exec_prefix, *sys.path]))",
        ],
        capture_output=True,
        timeout=_PROBE_TIMEOUT,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    paths = [p for p in json.loads(probe.stdout) if p]
    paths.append(str(Path(os.path.realpath(python)).parent))
    paths.append(str(Path(python).parent))
    # kubeserve_runtime may come from a source checkout (editable install): bind its tree.
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix == ".zip":
            path = path.parent
        if not path.is_dir():
            continue
        real = str(path)
        if real not in out:
            out.append(real)
    # Drop entries already covered by a parent entry, and anything under /usr (bound whole).
    out.sort(key=len)
    kept: list[str] = []
    for p in out:
        if p == "/usr" or p.startswith("/usr/"):
            continue
        if any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            continue
        kept.append(p)
    return kept


class TrialSandbox:
    """Runs `python -m kubeserve_runtime.trial` on a model file under the chosen isolation."""

    def __init__(
        self,
        mode: str,
        limits: TrialLimits,
        *,
        python: str | None = None,
        dev_mode: bool = False,
        allow_weak: bool = False,
    ) -> None:
        self.requested = mode
        self.limits = limits
        self.python = python or sys.executable
        self.dev_mode = dev_mode
        self.allow_weak = allow_weak
        self._info: SandboxInfo | None = None
        self._read_only: list[str] = []
        self._lock = asyncio.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self.is_root = os.geteuid() == 0

    @property
    def current(self) -> SandboxInfo | None:
        """The mode chosen at the first probe (None before it)."""
        return self._info

    # -- choosing a mode ---------------------------------------------------------------------
    async def info(self) -> SandboxInfo:
        """Probe once which isolation works here; raise `SandboxUnavailable` when the settings
        forbid building with what is available."""
        async with self._lock:
            if self._info is None:
                self._info = await asyncio.to_thread(self._choose)
                level = logging.INFO if self._info.strong else logging.WARNING
                log.log(level, "trial sandbox", extra={"sandbox": self._info.to_dict()})
        info = self._info
        if not info.strong and not (self.dev_mode or self.allow_weak):
            raise SandboxUnavailable(
                f"the trial sandbox here is '{info.mode}' ({info.detail}); outside dev mode the "
                "builder needs bubblewrap (apt-get install bubblewrap) or "
                "KUBESERVE_ALLOW_WEAK_SANDBOX=true"
            )
        if not info.strong:
            log.warning(
                "BUILDING WITHOUT FULL ISOLATION: untrusted models run with sandbox mode %r (%s)",
                info.mode,
                info.detail,
            )
        return info

    def _choose(self) -> SandboxInfo:
        self._read_only = _read_paths(self.python)
        modes = ["bwrap", "unshare", "none"] if self.requested == "auto" else [self.requested]
        reasons = []
        for mode in modes:
            try:
                info = self._probe(mode)
            except Exception as exc:  # a mode that does not work here: say why, try the next
                reasons.append(f"{mode}: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            if reasons:
                info.detail = "; ".join([info.detail, *reasons]).strip("; ")
            return info
        raise SandboxUnavailable("no sandbox mode works here: " + "; ".join(reasons))

    def _probe(self, mode: str) -> SandboxInfo:
        code = (
            "import json, os, socket, kubeserve_runtime.trial\n"
            "names = [n for _, n in socket.if_nameindex()]\n"
            "w = {}\n"
            "for p in ('/', '/etc', '/usr', '/var/tmp', '/root', '/home', '/model'):\n"
            "    w[p] = os.path.exists(p) and os.access(p, os.W_OK)\n"
            "print(json.dumps({'ifaces': names, 'uid': os.getuid(), 'writable': w}))\n"
        )
        with tempfile.TemporaryDirectory(prefix="kubeserve-probe-") as tmp:
            argv, cwd = self._argv(mode, Path(tmp), None, ["-c", code])
            outcome = self._run_blocking(argv, cwd, Path(tmp), _PROBE_TIMEOUT)
        if outcome.timed_out or outcome.returncode != 0:
            raise SandboxUnavailable(
                f"probe failed (exit {outcome.returncode}): {outcome.stderr_tail[-300:]}"
            )
        seen = json.loads(outcome.stdout.decode().strip().splitlines()[-1])
        no_net = set(seen["ifaces"]) <= {"lo"}
        fs = mode == "bwrap" and not any(seen["writable"].values())
        runs_as = f"uid {seen['uid']}" + (" (root outside)" if self.is_root else "")
        detail = {
            "bwrap": "bubblewrap: all namespaces unshared, read-only interpreter, tmpfs work dir",
            "unshare": "unshare --net: no network, host filesystem visible",
            "none": "resource limits and timeout only",
        }[mode]
        return SandboxInfo(mode, fs, no_net, runs_as, detail)

    # -- running -------------------------------------------------------------------------------
    def _argv(
        self,
        mode: str,
        host_dir: Path,
        model: Path | None,
        python_args: list[str],
        deps: Path | None = None,
    ) -> tuple[list[str], Path]:
        """(argv, cwd). `host_dir` is where the child may write outside bwrap."""
        py = [self.python, "-I", *python_args]
        if mode == "bwrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                raise SandboxUnavailable("bwrap is not installed")
            argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
            if self.is_root:
                # Root's bwrap keeps every capability unless told; map to an unprivileged uid.
                uid = str(self.limits.uid)
                argv += ["--unshare-user", "--uid", uid, "--gid", uid, "--cap-drop", "ALL"]
            argv += ["--ro-bind", "/usr", "/usr"]
            for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
                if os.path.islink(top):
                    argv += ["--symlink", os.readlink(top), top]
                elif os.path.isdir(top):
                    argv += ["--ro-bind", top, top]
            for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
                argv += ["--ro-bind-try", etc, etc]
            size = str(self.limits.max_file_bytes * 2)
            argv += ["--proc", "/proc", "--dev", "/dev"]
            tmp = "/tmp"  # noqa: S108 - a fresh tmpfs inside the sandbox, not the host's /tmp
            argv += ["--size", size, "--tmpfs", tmp, "--size", size, "--tmpfs", "/sandbox"]
            # After the tmpfs mounts: an interpreter or virtualenv living under /tmp (a CI
            # checkout, say) must stay visible instead of being hidden by the fresh /tmp.
            for path in self._read_only:
                argv += ["--ro-bind", path, path]
            if model is not None:
                argv += ["--ro-bind", str(model), f"/model/{model.name}"]
            if deps is not None:
                argv += ["--ro-bind", str(deps), "/deps"]
            # The root bwrap builds is a tmpfs without a size limit: make it read-only, so the
            # size-capped /tmp and /sandbox are the only places the child can write.
            argv += ["--remount-ro", "/"]
            argv += ["--setenv", "HOME", "/sandbox", "--chdir", "/sandbox", "--"]
            return argv + py, host_dir
        if mode == "unshare":
            if not self.is_root:
                raise SandboxUnavailable("unshare --net needs root")
            unshare = shutil.which("unshare")
            if unshare is None:
                raise SandboxUnavailable("unshare is not installed")
            return [unshare, "--net", "--", *py], host_dir
        if mode == "none":
            return py, host_dir
        raise SandboxUnavailable(f"unknown sandbox mode {mode!r}")

    def _env(self, home: str) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", **_THREAD_ENV}

    def _run_blocking(
        self, argv: list[str], cwd: Path, capture_dir: Path, timeout: float
    ) -> ProcessOutcome:
        """Run to completion or kill the process group at `timeout`; output goes to files
        (RLIMIT_FSIZE caps them) so a chatty child cannot fill the builder's memory."""
        out_path, err_path = capture_dir / ".stdout", capture_dir / ".stderr"
        nproc = self.limits.max_processes
        if not self.is_root:  # root is exempt from RLIMIT_NPROC: no need to count
            nproc += _tasks_of_user(os.getuid())
        started = time.perf_counter()
        timed_out = False
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=self._env(str(cwd)),
                preexec_fn=_limits_preexec(self.limits, nproc),
                process_group=0,
                close_fds=True,
            )
        self._live.add(proc)
        try:
            try:
                returncode: int | None = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                try:
                    returncode = proc.wait(_KILL_GRACE)
                except subprocess.TimeoutExpired:
                    returncode = None
        finally:
            self._live.discard(proc)
        duration = (time.perf_counter() - started) * 1000
        with out_path.open("rb") as fh:
            stdout = fh.read(_STDOUT_CAP + 1)
        size = err_path.stat().st_size
        with err_path.open("rb") as fh:
            fh.seek(max(0, size - _STDERR_TAIL))
            tail = fh.read().decode("utf-8", "replace")
        return ProcessOutcome(
            returncode=returncode,
            timed_out=timed_out,
            stdout=stdout[:_STDOUT_CAP],
            stderr_tail=tail,
            duration_ms=duration,
            stdout_truncated=len(stdout) > _STDOUT_CAP,
        )

    async def run_trial(self, model_file: Path, deps: Path | None = None) -> TrialOutcome:
        """Trial-load `model_file` (a copy the child may read; nothing else of ours is visible
        to it under bwrap), with the unpacked wheels in `deps` first on its import path."""
        info = await self.info()
        return await asyncio.to_thread(self._trial_blocking, info, model_file, deps)

    def _trial_blocking(
        self, info: SandboxInfo, model_file: Path, deps: Path | None
    ) -> TrialOutcome:
        with tempfile.TemporaryDirectory(prefix="kubeserve-trial-") as tmp:
            host_dir = Path(tmp)
            if info.mode == "bwrap":
                target = f"/model/{model_file.name}"
                argv, cwd = self._argv(info.mode, host_dir, model_file, [], deps)
                path_args = ["--path", "/deps"] if deps is not None else []
            else:
                # Without bwrap the child works in a fresh directory of its own.
                work = host_dir / "work"
                work.mkdir()
                copy = work / model_file.name
                shutil.copyfile(model_file, copy)
                target = str(copy)
                argv, cwd = self._argv(info.mode, work, None, [])
                path_args = ["--path", str(deps)] if deps is not None else []
            argv += ["-m", "kubeserve_runtime.trial", *path_args, target]
            process = self._run_blocking(argv, cwd, host_dir, self.limits.timeout_seconds)
        return TrialOutcome(process, _parse_result(process.stdout), self.limits, info)

    def kill_all(self) -> None:
        """Stop every running trial (service shutdown)."""
        for proc in list(self._live):
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _parse_result(stdout: bytes) -> dict[str, Any] | None:
    """The child's last stdout line as a JSON object, or None. Untrusted: callers validate."""
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None
