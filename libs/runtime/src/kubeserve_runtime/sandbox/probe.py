"""`probe()`: confine a child exactly as a replica would be and report what it can see and do.

The platform runs it (`python -m kubeserve_runtime.sandbox --probe`) at start and refuses to
run tenant code when the verdict is not `ok`: the fail-closed check. The child tries what a
hostile model would - read a file of the host, write its read-only view, reach a TCP port the
probe listens on, signal the probe's process, create a namespace - and the verdict says whether
every attempt was refused, along with what limits and filters it got.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from kubeserve_runtime.sandbox import cgroups, core, linux
from kubeserve_runtime.sandbox.spec import MIB, Bind, CgroupLimits, Limits, SandboxSpec, Tmpfs

PROBE_UID = 1_999_999  # below the replicas' range; never a real account
_TIMEOUT = 30.0


def _inside(checks: dict[str, Any], confined: core.Confined) -> dict[str, Any]:
    """Runs in the confined child: every hostile attempt, each result recorded."""
    result: dict[str, Any] = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "pid": os.getpid(),
        "user_namespace": confined.user_namespace,
        "seccomp_filter": confined.seccomp,
        "cgroup_controllers": list(confined.cgroup_controllers),
        "cgroup_dirs": list(confined.cgroup_dirs),
        "python_paths": list(confined.python_paths),
        "warnings": list(confined.warnings),
    }
    status = core._status()
    for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
        result[key] = status.get(key, "").strip()
    result["interfaces"] = sorted(name for _, name in socket.if_nameindex())
    result["visible_pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    result["host_file_visible"] = os.path.exists(checks["secret"])
    result["root_entries"] = sorted(os.listdir("/"))
    result["can_write_root"] = _can_write("/probe-write")
    result["can_write_readonly_bind"] = _can_write(checks["ro"] + "/probe-write")
    result["can_write_writable_bind"] = _can_write(checks["rw"] + "/probe-write")
    result["can_write_tmp"] = _can_write("/tmp/probe-write")  # noqa: S108 - its own tmpfs
    try:
        with socket.create_connection(("127.0.0.1", checks["tcp_port"]), timeout=2):
            result["tcp_connect"] = "connected"
    except OSError as exc:
        result["tcp_connect"] = errno.errorcode.get(exc.errno or 0, str(exc))
    try:
        os.kill(checks["probe_pid"], 0)
        result["signal_probe"] = "delivered"
    except OSError as exc:
        result["signal_probe"] = errno.errorcode.get(exc.errno or 0, str(exc))
    try:
        linux.unshare(linux.CLONE_NEWUSER)
        result["unshare_user"] = "allowed"
    except OSError as exc:
        result["unshare_user"] = errno.errorcode.get(exc.errno or 0, str(exc))
    return result


def _can_write(path: str) -> bool:
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write("x")
    except OSError:
        return False
    return True


def verdict(seen: dict[str, Any]) -> list[str]:
    """What the probe's child could do that a tenant's code must not (empty: all refused)."""
    problems = []
    if seen.get("uid") in (0, None) or seen.get("CapEff") != "0000000000000000":
        problems.append(f"runs as uid {seen.get('uid')} with CapEff {seen.get('CapEff')}")
    if seen.get("NoNewPrivs") != "1":
        problems.append("no_new_privs is not set")
    if seen.get("seccomp_filter") and seen.get("Seccomp") != "2":
        problems.append("the seccomp filter is not active")
    if set(seen.get("interfaces", ["?"])) - {"lo"}:
        problems.append(f"has network interfaces {seen.get('interfaces')}")
    if seen.get("tcp_connect") == "connected":
        problems.append("reached a TCP port of the host")
    if seen.get("signal_probe") == "delivered":
        problems.append("could signal a host process")
    if seen.get("visible_pids") != [1]:
        problems.append(f"sees processes {seen.get('visible_pids')}")
    if seen.get("host_file_visible"):
        problems.append("sees a host file outside its binds")
    if seen.get("can_write_root") or seen.get("can_write_readonly_bind"):
        problems.append("can write its read-only view")
    if not seen.get("can_write_writable_bind") or not seen.get("can_write_tmp"):
        problems.append("cannot write where it should")
    if seen.get("unshare_user") == "allowed":
        problems.append("can create a user namespace")
    if not seen.get("socket_served"):
        problems.append("its Unix socket is not reachable from the host")
    return problems


def probe(*, python_env: bool = True) -> dict[str, Any]:
    """Confine a child, run the checks, return {"ok", "problems", "seen", "reason"}."""
    work = Path(tempfile.mkdtemp(prefix="kubeserve-sandbox-probe-"))
    try:
        return _probe(work, python_env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _probe(work: Path, python_env: bool) -> dict[str, Any]:
    for name in ("root", "ro", "rw"):
        (work / name).mkdir()
    (work / "secret").write_text("the platform's secret")
    (work / "ro" / "file").write_text("read-only")
    if os.geteuid() == 0:
        os.chown(work / "rw", PROBE_UID, PROBE_UID)
    spec = SandboxSpec(
        uid=PROBE_UID,
        gid=PROBE_UID,
        root_dir=str(work / "root"),
        binds=(Bind(str(work / "ro"), "/probe/ro"), Bind(str(work / "rw"), "/probe/rw", True)),
        tmpfs=(Tmpfs("/tmp", 1024 * 1024),),  # noqa: S108 - the sandbox's own tmpfs
        limits=Limits(processes=64, open_files=64),
        cgroup=CgroupLimits(
            f"kubeserve-probe-{os.getpid()}", memory_bytes=256 * MIB, pids_max=64, cpu=0.5
        ),
        python_env=python_env,
        listen=str(work / "probe.sock"),
    )
    tcp = socket.create_server(("127.0.0.1", 0))
    checks = {
        "secret": str(work / "secret"),
        "ro": "/probe/ro",
        "rw": "/probe/rw",
        "tcp_port": tcp.getsockname()[1],
        "probe_pid": os.getpid(),
    }
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor, then (inside enter) the confined child
        code = 0
        try:
            os.close(read_end)
            confined = core.enter(spec, keep_fds=[write_end])
            os.write(write_end, json.dumps(_inside(checks, confined)).encode() + b"\n")
            os.close(write_end)
            assert confined.listen_fd is not None
            listener = socket.socket(fileno=confined.listen_fd)
            listener.settimeout(_TIMEOUT)
            conn, _ = listener.accept()
            conn.sendall(b"served")
            conn.close()
        except core.SandboxUnavailable as exc:
            os.write(write_end, json.dumps({"unavailable": str(exc)}).encode() + b"\n")
            code = 1
        except BaseException as exc:
            with contextlib.suppress(Exception):
                os.write(write_end, json.dumps({"error": repr(exc)}).encode() + b"\n")
            code = 2
        finally:
            os._exit(code)
    os.close(write_end)
    tcp.close()
    seen: dict[str, Any] = {}
    try:
        line = _read_line(read_end, _TIMEOUT)
        seen = json.loads(line) if line else {"error": "the probe's child said nothing"}
        if "unavailable" not in seen and "error" not in seen:
            seen["socket_served"] = _connect(str(work / "probe.sock")) == b"served"
    finally:
        os.close(read_end)
        _reap(pid)
        # Every process of the group is gone once the supervisor is reaped.
        for _ in range(50):
            if cgroups.remove(seen.get("cgroup_dirs") or []):
                break
            time.sleep(0.02)
    if "unavailable" in seen:
        return {"ok": False, "reason": seen["unavailable"], "problems": [], "seen": {}}
    if "error" in seen:
        return {"ok": False, "reason": f"the probe failed: {seen['error']}", "problems": []}
    problems = verdict(seen)
    reason = "" if not problems else "the sandbox does not hold: " + "; ".join(problems)
    return {"ok": not problems, "reason": reason, "problems": problems, "seen": seen}


def _read_line(fd: int, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _connect(path: str) -> bytes:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(path)
            return client.recv(64)
    except OSError:
        return b""


def _reap(pid: int) -> None:
    deadline = time.monotonic() + _TIMEOUT
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        os.kill(pid, 9)
    os.waitpid(pid, 0)
