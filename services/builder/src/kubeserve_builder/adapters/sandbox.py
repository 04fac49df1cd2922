"""The sandbox the trial load runs in: `python -m kubeserve_runtime.sandbox` (the same
confinement as a local replica: its own user, no capabilities, no_new_privs, seccomp, its own
mount/PID/network namespaces seeing only the interpreter, the model and the unpacked wheels
read-only and a size-capped tmpfs, rlimits), with a wall-clock timeout that kills the launcher's
whole process group.

Fail closed: a probe (`python -m kubeserve_runtime.sandbox --probe`, or any `SandboxProbe`
passed in) runs once; when it says the sandbox does not hold here, every trial is refused with
one message naming the fix. There is no weaker fallback. The only way to load models without it
is the explicit opt-out `KUBESERVE_INSECURE_NO_SANDBOX=1` (single-user machines; `kubeserve up
--insecure-no-sandbox` sets it and warns once at start, so nothing is logged per build here):
the trial then runs as a plain child with the limits and the timeout only.

The builder imports only `kubeserve_runtime.sandbox.spec` (an import-linter contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeserve_runtime.sandbox.spec import (
    EXIT_SANDBOX_FAILED,
    Bind,
    Limits,
    SandboxSpec,
    Tmpfs,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_STDOUT_CAP = 1 * MIB  # the trial prints one JSON line; more is noise or an attack
_STDERR_TAIL = 4096
_PROBE_TIMEOUT = 60.0
_KILL_GRACE = 10.0
_WARM_TIMEOUT = 600.0
# Only these reach the child: no credentials, no proxy settings, no PYTHON* knobs.
_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",  # noqa: S108 - the sandbox's own tmpfs
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
FIX = (
    "give the builder what the sandbox needs (root with CAP_SYS_ADMIN, or unprivileged user "
    "namespaces: sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=10000; "
    "`python -m kubeserve_runtime.sandbox --probe` shows what fails), or, on a single-user "
    "machine only, set "
    "KUBESERVE_INSECURE_NO_SANDBOX=1 (`kubeserve up --insecure-no-sandbox`) to load models "
    "without containment"
)


class SandboxUnavailable(Exception):
    """The sandbox cannot be had on this machine; the message names the reason and the fix."""


@dataclass(frozen=True)
class TrialLimits:
    memory_bytes: int
    cpu_seconds: int
    timeout_seconds: float
    max_file_bytes: int
    max_processes: int
    uid: int = 1_900_000  # the first trial's uid; concurrent trials get the next ones


@dataclass
class SandboxInfo:
    mode: str  # "sandbox" | "insecure-none" | "unavailable"
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
        # The sandbox's supervisor reports a child killed by a signal as 128 + the signal.
        if self.sandbox.mode == "sandbox" and rc > 128 and self.result is None:
            return rc - 128
        return None


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str = ""
    seen: dict[str, Any] = field(default_factory=dict)


# The port through which the sandbox is judged (tests pass a probe that says "cannot").
SandboxProbe = Callable[[], Awaitable[ProbeResult]]


def subprocess_probe(python: str) -> SandboxProbe:
    """The real probe: confine a child the way a trial is confined and try what a hostile
    model would (`kubeserve_runtime.sandbox.probe`)."""

    async def probe() -> ProbeResult:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-I",
            "-m",
            "kubeserve_runtime.sandbox",
            "--probe",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(_ENV),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _PROBE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return ProbeResult(False, f"the sandbox probe did not finish in {_PROBE_TIMEOUT:g} s")
        try:
            data = json.loads(out.decode())
        except ValueError:
            tail = err.decode(errors="replace").strip()[-300:]
            return ProbeResult(False, f"the sandbox probe failed: {tail or 'no output'}")
        ok = bool(data.get("ok")) and proc.returncode == 0
        return ProbeResult(ok, str(data.get("reason") or ""), dict(data.get("seen") or {}))

    return probe


# Compiles the bytecode of what a trial imports, once, into the environment itself (the sandbox
# sees it read-only, so a trial could never cache it and would compile sklearn, scipy and
# pandas from source every time: seconds of its CPU limit). Trusted code, no tenant file; uv
# installs without bytecode unless told to, pip and the images compile at install.
_WARM = """
import compileall, importlib.util, os
for name in ("numpy", "scipy", "sklearn", "pandas", "joblib", "xgboost", "lightgbm",
             "onnxruntime", "kubeserve_runtime"):
    spec = importlib.util.find_spec(name)
    for path in (spec.submodule_search_locations or []) if spec else []:
        if os.access(path, os.W_OK):
            compileall.compile_dir(path, quiet=2, workers=0)
"""


async def warm_bytecode(python: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        python,
        "-I",
        "-c",
        _WARM,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(_ENV),
    )
    try:
        await asyncio.wait_for(proc.wait(), _WARM_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _limits_preexec(limits: TrialLimits) -> Callable[[], None]:
    """The trial's rlimits, set between fork and exec: in the sandbox they bound the launcher
    too (the sandbox then sets its own, equal ones); without it they are all there is."""

    def apply() -> None:
        cpu = limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))

    return apply


class TrialSandbox:
    """Runs `python -m kubeserve_runtime.trial` on a model file, confined."""

    def __init__(
        self,
        limits: TrialLimits,
        *,
        python: str | None = None,
        insecure_no_sandbox: bool = False,
        probe: SandboxProbe | None = None,
    ) -> None:
        self.limits = limits
        self.python = python or sys.executable
        self.insecure = insecure_no_sandbox
        self._probe = probe or subprocess_probe(self.python)
        self._info: SandboxInfo | None = None
        self._lock = asyncio.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._uids_in_use: set[int] = set()

    @property
    def current(self) -> SandboxInfo | None:
        """What the probe found (None before it ran)."""
        return self._info

    async def info(self) -> SandboxInfo:
        """Probe once; raise `SandboxUnavailable` (reason and fix) when the sandbox does not
        hold here and the opt-out is not set."""
        async with self._lock:
            if self._info is None:
                self._info = await self._choose()
        if self._info.mode == "unavailable":
            raise SandboxUnavailable(self._info.detail)
        return self._info

    async def _choose(self) -> SandboxInfo:
        if self.insecure:
            # Warned about once by whoever set it (`kubeserve up --insecure-no-sandbox`).
            return SandboxInfo(
                "insecure-none",
                False,
                False,
                f"uid {os.getuid()} (the platform's user)",
                "KUBESERVE_INSECURE_NO_SANDBOX=1: models load without containment",
            )
        result = await self._probe()
        if not result.ok:
            reason = result.reason or "the sandbox probe failed"
            detail = f"models cannot be loaded safely here: {reason}. Fix: {FIX}"
            log.error("trial sandbox unavailable: %s", detail)
            return SandboxInfo("unavailable", False, False, "-", detail)
        await warm_bytecode(self.python)
        return SandboxInfo(
            "sandbox",
            True,
            True,
            f"uid {self.limits.uid}+ (its own), CapEff 0",
            "kubeserve_runtime.sandbox: own user, mount, pid and network namespaces; "
            "read-only model and interpreter; seccomp; rlimits",
        )

    # -- running -------------------------------------------------------------------------------
    async def run_trial(self, model_file: Path, deps: Path | None = None) -> TrialOutcome:
        """Trial-load `model_file` with the unpacked wheels in `deps` first on its path."""
        info = await self.info()
        uid = self._take_uid()
        try:
            return await asyncio.to_thread(self._trial_blocking, info, model_file, deps, uid)
        finally:
            self._uids_in_use.discard(uid)

    def _take_uid(self) -> int:
        # One user per concurrent trial: RLIMIT_NPROC and signals are per user.
        uid = self.limits.uid
        while uid in self._uids_in_use:
            uid += 1
        self._uids_in_use.add(uid)
        return uid

    def spec_for(self, root: Path, model_file: Path, deps: Path | None, uid: int) -> SandboxSpec:
        binds = [Bind(str(model_file), f"/model/{model_file.name}")]
        if deps is not None:
            binds.append(Bind(str(deps), "/deps"))
        size = self.limits.max_file_bytes * 2
        return SandboxSpec(
            uid=uid,
            gid=uid,
            root_dir=str(root),
            binds=tuple(binds),
            tmpfs=(Tmpfs("/tmp", size), Tmpfs("/dev/shm", 16 * MIB)),  # noqa: S108
            hostname="trial",
            workdir="/tmp",  # noqa: S108 - its own tmpfs
            env=dict(_ENV),
            limits=Limits(
                open_files=256,
                processes=self.limits.max_processes,
                file_size_bytes=self.limits.max_file_bytes,
                address_space_bytes=self.limits.memory_bytes,
                cpu_seconds=self.limits.cpu_seconds,
            ),
        )

    def _trial_blocking(
        self, info: SandboxInfo, model_file: Path, deps: Path | None, uid: int
    ) -> TrialOutcome:
        with tempfile.TemporaryDirectory(prefix="kubeserve-trial-") as tmp:
            host = Path(tmp)
            trial = [self.python, "-I", "-m", "kubeserve_runtime.trial"]
            if info.mode == "sandbox":
                (host / "root").mkdir()
                spec = self.spec_for(host / "root", model_file, deps, uid)
                launcher = [self.python, "-I", "-m", "kubeserve_runtime.sandbox"]
                argv = [*launcher, "--spec", spec.to_json(), "--", *trial]
                argv += ["--path", "/deps"] if deps is not None else []
                argv.append(f"/model/{model_file.name}")
                cwd = host
            else:
                cwd = host / "work"
                cwd.mkdir()
                argv = [*trial, *(["--path", str(deps)] if deps is not None else [])]
                argv.append(str(model_file))
            process = self._run_blocking(argv, cwd, host, self.limits.timeout_seconds)
        result = _parse_result(process.stdout)
        if info.mode == "sandbox" and result is None and process.returncode == EXIT_SANDBOX_FAILED:
            raise SandboxUnavailable(
                f"the trial's sandbox could not be set up: {process.stderr_tail.strip()[-300:]}"
            )
        return TrialOutcome(process, result, self.limits, info)

    def _run_blocking(
        self, argv: list[str], cwd: Path, capture_dir: Path, timeout: float
    ) -> ProcessOutcome:
        """Run to completion or kill the process group at `timeout`; output goes to files
        (RLIMIT_FSIZE caps them) so a chatty child cannot fill the builder's memory."""
        out_path, err_path = capture_dir / ".stdout", capture_dir / ".stderr"
        started = time.perf_counter()
        timed_out = False
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=dict(_ENV, HOME=str(cwd)),
                preexec_fn=_limits_preexec(self.limits),
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
