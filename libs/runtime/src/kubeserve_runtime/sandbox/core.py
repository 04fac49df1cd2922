"""`enter(spec)`: confine the calling process (a freshly forked, single-threaded child) the way
a restricted Kubernetes pod is confined, with plain Linux system calls.

The caller forks; its child calls `enter()`. That child (the *supervisor*, trusted code):
1. creates the listening Unix socket of `spec.listen` (on the host, before anything else),
2. joins a cgroup of its own (`spec.cgroup`) while /sys/fs/cgroup is still visible,
3. unshares the mount, network, IPC, UTS, cgroup and PID namespaces (as a non-root platform
   user: first a user namespace mapping only its own uid, which gives the capabilities for the
   mounts inside that namespace and nothing outside),
4. builds the new root on a size-capped tmpfs at `spec.root_dir` (`rootfs.build`): read-only
   binds of the interpreter's own files and of `spec.binds`, private tmpfs mounts, a minimal
   /dev and /etc,
5. forks the *confined* process (pid 1 of the new PID namespace) and then only forwards
   SIGTERM/SIGINT/SIGHUP to it, waits for it and exits with its status: it never returns.
   It runs as the sandbox's uid too, with no capabilities.

The confined process mounts its /proc, pivots into the new root and detaches the old one,
makes / read-only, closes every file descriptor it was not given, sets the rlimits, drops every
capability (bounding set, ambient, effective/permitted/inheritable) and changes to the
unprivileged uid/gid, sets no_new_privs, installs the seccomp filter, checks from
/proc/self/status that it holds no capability, and only then returns to the caller, which loads
the tenant's model. Any failure before the fork raises `SandboxUnavailable`; a failure after it
ends the confined process with EXIT_SANDBOX_FAILED. Nothing ever continues unconfined.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import socket
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kubeserve_runtime.sandbox import cgroups, linux, rootfs, seccomp
from kubeserve_runtime.sandbox.spec import (
    EXIT_SANDBOX_FAILED,
    LISTEN_FD_ENV,
    SandboxSpec,
)

_NAMESPACES = (
    linux.CLONE_NEWNS
    | linux.CLONE_NEWNET
    | linux.CLONE_NEWIPC
    | linux.CLONE_NEWUTS
    | linux.CLONE_NEWPID
    | linux.CLONE_NEWCGROUP
)
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class SandboxUnavailable(Exception):
    """The sandbox cannot be had here; the message names the reason and the fix."""


@dataclass(frozen=True)
class Confined:
    """What the confined process got (returned by `enter` inside it)."""

    uid: int
    gid: int
    user_namespace: bool
    seccomp: bool
    cgroup_dirs: tuple[str, ...]
    cgroup_controllers: tuple[str, ...]
    listen_fd: int | None
    python_paths: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())


def python_paths() -> list[str]:
    """Host directories the running interpreter imports from, bound read-only at the same
    place: the installation (stdlib, lib-dynload, the binary), the environment's
    site-packages, and the directory holding kubeserve_runtime. Not every path on sys.path:
    editable installs of other packages (the platform's services) stay invisible, and the .pth
    entries pointing at them are simply absent inside."""
    import kubeserve_runtime

    candidates = {
        sys.base_prefix,
        sys.base_exec_prefix,
        sys.prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        str(Path(kubeserve_runtime.__file__).resolve().parent.parent),
    }
    return _outermost(p for p in candidates if os.path.isdir(p))


def _outermost(paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}):
        if path == "/":
            raise SandboxUnavailable("the interpreter lives at /: the sandbox cannot bind it")
        if not any(path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


def enter(
    spec: SandboxSpec,
    *,
    on_child: Callable[[int], None] | None = None,
    keep_fds: Iterable[int] = (),
) -> Confined:
    """Confine the calling process per `spec` (see the module docstring). Returns in the
    confined process only; `on_child(host_pid)` runs in the supervisor once the confined
    process exists (to report its pid through a descriptor opened beforehand)."""
    if os.uname().sysname != "Linux":
        raise SandboxUnavailable("the sandbox needs Linux namespaces")
    userns = os.geteuid() != 0
    warnings: list[str] = []
    paths = python_paths() if spec.python_env else []
    listen_fd = listen_unix(spec.listen) if spec.listen else None
    joined: cgroups.Joined | None = None
    if spec.cgroup is not None:
        try:
            joined = cgroups.join(spec.cgroup)
        except OSError as exc:
            warnings.append(f"no cgroup limits (rlimits only): {exc.strerror or exc}")
    nproc_extra = _tasks_of_user(os.getuid()) if userns else 0
    outer_uid, outer_gid = os.getuid(), os.getgid()
    try:
        if userns:
            linux.unshare(linux.CLONE_NEWUSER | _NAMESPACES)
            _map_ids(spec.uid, spec.gid, outer_uid, outer_gid)
        else:
            linux.unshare(_NAMESPACES)
    except OSError as exc:
        raise SandboxUnavailable(_unshare_advice(exc, userns)) from None
    try:
        rootfs.build(spec, paths)
        linux.sethostname(spec.hostname)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot build the sandbox's root: {exc}") from None
    death_r, death_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(death_w)
            keep = {0, 1, 2, *keep_fds, *([listen_fd] if listen_fd is not None else [])}
            has_filter = _confine(spec, userns, death_r, keep, nproc_extra)
            if listen_fd is not None:
                os.environ[LISTEN_FD_ENV] = str(listen_fd)
            return Confined(
                uid=spec.uid,
                gid=spec.gid,
                user_namespace=userns,
                seccomp=has_filter,
                cgroup_dirs=joined.dirs if joined else (),
                cgroup_controllers=joined.controllers if joined else (),
                listen_fd=listen_fd,
                python_paths=tuple(paths),
                warnings=tuple(warnings),
            )
        except BaseException as exc:  # never continue half-confined
            _die(f"sandbox: confinement failed: {type(exc).__name__}: {exc}")
    _supervise(pid, spec, userns, on_child, death_w, listen_fd)


# -- before the fork (the supervisor) ------------------------------------------------------------


def listen_unix(path: str) -> int:
    """A listening Unix socket at `path` (mode 0600: only the platform's user may connect),
    as an inheritable descriptor; a stale socket file is replaced, anything else refused."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise SandboxUnavailable(f"{path} exists and is not a socket")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # only the platform's user may connect
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise SandboxUnavailable(f"cannot listen on {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(previous)
    sock.listen(1024)
    fd = sock.detach()
    os.set_inheritable(fd, True)
    return fd


def _unshare_advice(exc: OSError, userns: bool) -> str:
    reason = exc.strerror or str(exc)
    if userns:
        return (
            f"cannot create the sandbox's namespaces as uid {os.getuid()} ({reason}): run the "
            "platform as root, or enable unprivileged user namespaces "
            "(sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=10000; "
            "on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0)"
        )
    return (
        f"cannot create the sandbox's namespaces as root ({reason}): the platform needs "
        "CAP_SYS_ADMIN (a container must be privileged or allow unshare/mount)"
    )


def _map_ids(uid: int, gid: int, outer_uid: int, outer_gid: int) -> None:
    # An unprivileged process may map exactly its own ids, once, after denying setgroups.
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {outer_uid} 1"),
        ("gid_map", f"{gid} {outer_gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w", encoding="ascii") as fh:
            fh.write(text)


def _tasks_of_user(uid: int) -> int:
    """Threads the user runs now: RLIMIT_NPROC counts them all, across namespaces, on kernels
    before 5.14 (later ones count per user namespace, and this only loosens the limit)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def _supervise(
    child: int,
    spec: SandboxSpec,
    userns: bool,
    on_child: Callable[[int], None] | None,
    death_w: int,
    listen_fd: int | None,
) -> NoReturn:
    """The supervisor's whole remaining life: report, drop privileges, forward, wait, exit."""
    try:
        for sig in _FORWARDED:
            signal.signal(sig, _forwarder(child))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if listen_fd is not None:
            os.close(listen_fd)
        if on_child is not None:
            on_child(child)
        _drop_privileges(spec, userns)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
        _die(f"sandbox: supervisor failed: {type(exc).__name__}: {exc}")
    # death_w stays open until this process ends: the confined process checks it (see _confine).
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except ChildProcessError:
            os._exit(EXIT_SANDBOX_FAILED)
        if os.WIFEXITED(status):
            os._exit(os.WEXITSTATUS(status))
        if os.WIFSIGNALED(status):
            os._exit(128 + os.WTERMSIG(status))


def _forwarder(child: int) -> Callable[[int, Any], None]:
    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.kill(child, signum)

    return forward


def _die(message: str) -> NoReturn:
    with contextlib.suppress(Exception):
        os.write(2, (message[:2000] + "\n").encode(errors="replace"))
    os._exit(EXIT_SANDBOX_FAILED)


# -- after the fork (the confined process) -------------------------------------------------------


def _confine(
    spec: SandboxSpec, userns: bool, death_r: int, keep: set[int], nproc_extra: int
) -> bool:
    root = spec.root_dir.rstrip("/")
    proc_flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", root + "/proc", "proc", proc_flags)
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)  # the old root, stacked on the new one by pivot_root
    os.chdir("/")
    readonly = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    linux.mount(None, "/", None, readonly)
    _close_fds(keep | {death_r})
    _set_rlimits(spec, nproc_extra)
    _drop_privileges(spec, userns)
    # Set after the credentials changed (a change clears it); then make sure the supervisor did
    # not die before it was set, which would leave nobody to kill us with the launcher.
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    ready, _, _ = select.select([death_r], [], [], 0)
    if ready:
        raise RuntimeError("the supervisor is gone")
    os.close(death_r)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    os.chdir(spec.workdir)
    os.environ.clear()
    os.environ.update(spec.env)
    program = seccomp.build() if spec.seccomp else None
    if program is not None:
        seccomp.install(program)
    _verify(spec, seccomp_on=program is not None)
    return program is not None


def _close_fds(keep: set[int]) -> None:
    # Anything inherited from the launcher (a directory descriptor above all) would be a way
    # back out of the new root.
    start = 0
    for fd in sorted(keep):
        if fd > start:
            os.closerange(start, fd)
        start = max(start, fd + 1)
    os.closerange(start, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _set_rlimits(spec: SandboxSpec, nproc_extra: int) -> None:
    limits = spec.limits
    pairs = [
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes + nproc_extra),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.address_space_bytes is not None:
        pairs.append((resource.RLIMIT_AS, limits.address_space_bytes))
    if limits.cpu_seconds is not None:
        pairs.append((resource.RLIMIT_CPU, limits.cpu_seconds))
    for which, value in pairs:
        resource.setrlimit(which, (value, value))


def _drop_privileges(spec: SandboxSpec, userns: bool) -> None:
    for cap in range(linux.last_capability() + 1):
        try:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != 22:  # EINVAL: a capability this kernel does not have
                raise
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    if not userns:
        os.setgroups([])
    os.setresgid(spec.gid, spec.gid, spec.gid)
    os.setresuid(spec.uid, spec.uid, spec.uid)
    # Leaving uid 0 cleared them already; in a user namespace the uid never was 0.
    linux.clear_capabilities()


def _status() -> dict[str, str]:
    with open("/proc/self/status", encoding="ascii") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def _verify(spec: SandboxSpec, *, seccomp_on: bool) -> None:
    status = _status()
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(status.get(key, "1"), 16) != 0:
            raise RuntimeError(f"{key} is {status.get(key)}, not 0")
    if status.get("NoNewPrivs", "").strip() != "1":
        raise RuntimeError("no_new_privs is not set")
    if seccomp_on and status.get("Seccomp", "").strip() != "2":
        raise RuntimeError("the seccomp filter is not active")
    uids = {int(u) for u in status.get("Uid", "").split()}
    if uids != {spec.uid}:
        raise RuntimeError(f"uids are {sorted(uids)}, not {spec.uid}")
