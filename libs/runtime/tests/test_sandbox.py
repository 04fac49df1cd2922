"""The sandbox, tried the way a hostile model would try it: real confined children (through
`python -m kubeserve_runtime.sandbox`, as the builder's trial and the deployer's plain
processes run), each attempt asserted refused - or, where the sandbox must allow something
(its writable bind, its Unix socket, threads), asserted to work."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubeserve_runtime.sandbox import seccomp
from kubeserve_runtime.sandbox.spec import (
    EXIT_SANDBOX_FAILED,
    LISTEN_FD_ENV,
    MIB,
    Bind,
    CgroupLimits,
    Limits,
    SandboxSpec,
    SpecError,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="these cases run as root (CI does)")

UID = 2_099_001
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A host directory with what the cases bind: a read-only dir, a writable one (owned by the
    sandbox's uid, as a launcher would prepare it), a secret next to them, the new root."""
    for name in ("root", "ro", "rw", "secret"):
        (tmp_path / name).mkdir()
    (tmp_path / "ro" / "data.txt").write_text("read me")
    (tmp_path / "secret" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----")
    os.chown(tmp_path / "rw", UID, UID)
    return tmp_path


def make_spec(box: Path, **changes: Any) -> SandboxSpec:
    spec = SandboxSpec(
        uid=UID,
        gid=UID,
        root_dir=str(box / "root"),
        binds=(Bind(str(box / "ro"), "/data"), Bind(str(box / "rw"), "/out", writable=True)),
        env=ENV,
        limits=Limits(open_files=64, processes=64),
    )
    return replace(spec, **changes)


def confined(
    spec: SandboxSpec, code: str, *, timeout: float = 60, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run `code` with this interpreter inside the sandbox; its stdout is the result."""
    argv = [sys.executable, "-m", "kubeserve_runtime.sandbox", "--spec", spec.to_json()]
    argv += ["--", sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **popen)


def result_of(spec: SandboxSpec, code: str, **kwargs: Any) -> Any:
    done = confined(spec, code, **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_probe_finds_every_hostile_attempt_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kubeserve_runtime.sandbox", "--probe"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report
    seen = report["seen"]
    assert seen["uid"] != 0 and seen["CapEff"] == "0000000000000000"
    assert seen["tcp_connect"] != "connected" and seen["signal_probe"] == "ESRCH"


def test_it_runs_unprivileged_without_capabilities_under_seccomp(box: Path) -> None:
    seen = result_of(
        make_spec(box),
        """
        import json, os
        status = dict(l.split(":\\t", 1) for l in open("/proc/self/status") if ":\\t" in l)
        print(json.dumps({k: status[k].strip() for k in
              ("Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}
              | {"groups": os.getgroups(), "pid": os.getpid()}))
        """,
    )
    assert seen["Uid"].split() == [str(UID)] * 4
    assert seen["Gid"].split() == [str(UID)] * 4
    assert seen["groups"] == []
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert seen[key] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"
    assert seen["Seccomp"] == "2"
    assert seen["pid"] == 1  # pid 1 of a PID namespace of its own


def test_it_sees_no_host_file_outside_its_binds(box: Path) -> None:
    seen = result_of(
        make_spec(box),
        f"""
        import json, os
        out = {{"root": sorted(os.listdir("/")), "data": open("/data/data.txt").read()}}
        for path in ({str(box / "secret" / "key.pem")!r}, {str(box)!r}, "/etc/shadow",
                     "/root", "/home", "/var", "/run"):
            out[path] = os.path.exists(path)
        out["etc"] = sorted(os.listdir("/etc"))
        out["dev"] = sorted(os.listdir("/dev"))
        print(json.dumps(out))
        """,
    )
    assert seen["data"] == "read me"
    assert not seen[str(box / "secret" / "key.pem")] and not seen[str(box)]
    assert not seen["/etc/shadow"] and not seen["/var"] and not seen["/run"] and not seen["/home"]
    assert "shadow" not in seen["etc"] and "passwd" in seen["etc"]
    assert set(seen["dev"]) <= {
        "null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr", "shm"
    }  # fmt: skip


def test_other_workspace_packages_are_invisible_but_the_runtime_is_importable(box: Path) -> None:
    seen = result_of(
        make_spec(box),
        """
        import importlib.util, json
        print(json.dumps({name: importlib.util.find_spec(name) is not None for name in
              ("kubeserve_runtime", "numpy", "kubeserve_common", "kubeserve_deployer")}))
        """,
    )
    assert seen == {
        "kubeserve_runtime": True,
        "numpy": True,
        "kubeserve_common": False,
        "kubeserve_deployer": False,
    }


def test_read_only_binds_and_root_refuse_writes_while_its_writable_places_accept(
    box: Path,
) -> None:
    seen = result_of(
        make_spec(box),
        """
        import json
        out = {}
        for path in ("/data/new", "/data/data.txt", "/new", "/usr/new", "/etc/passwd",
                     "/out/result", "/tmp/scratch"):
            try:
                with open(path, "a") as fh:
                    fh.write("x")
                out[path] = "written"
            except OSError as exc:
                out[path] = exc.__class__.__name__
        print(json.dumps(out))
        """,
    )
    for path in ("/data/new", "/data/data.txt", "/new", "/usr/new", "/etc/passwd"):
        assert seen[path] != "written", path
    assert seen["/out/result"] == "written" and seen["/tmp/scratch"] == "written"
    assert (box / "rw" / "result").read_text() == "x"
    assert (box / "ro" / "data.txt").read_text() == "read me"
    assert not (box / "ro" / "new").exists()


def test_a_bind_below_the_private_tmp_is_visible_on_top_of_it(box: Path) -> None:
    """A checkout under /tmp (CI clones there) puts the interpreter's own paths below the
    sandbox's private /tmp: they must be mounted on the tmpfs, not hidden under it."""
    spec = make_spec(box, binds=(Bind(str(box / "ro"), "/tmp/checkout/data"),))
    seen = result_of(
        spec,
        """
        import json, os
        print(json.dumps({"data": open("/tmp/checkout/data/data.txt").read(),
                          "tmp": sorted(os.listdir("/tmp"))}))
        """,
    )
    assert seen["data"] == "read me"
    # The private /tmp holds only mount points: ours, and this checkout's if it lives in /tmp.
    checkout = {Path(sys.prefix).parts[2]} if sys.prefix.startswith("/tmp/") else set()
    assert set(seen["tmp"]) - checkout == {"checkout"}


def test_it_has_no_network_and_cannot_reach_a_host_port(box: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        seen = result_of(
            make_spec(box),
            f"""
            import json, socket
            out = {{"ifaces": [n for _, n in socket.if_nameindex()]}}
            for host in ("127.0.0.1", "10.0.2.2", "8.8.8.8"):
                try:
                    socket.create_connection((host, {port}), timeout=2).close()
                    out[host] = "connected"
                except OSError as exc:
                    out[host] = exc.__class__.__name__
            print(json.dumps(out))
            """,
        )
    assert seen["ifaces"] == ["lo"]
    assert "connected" not in seen.values()


def test_it_cannot_see_or_signal_host_processes(box: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        seen = result_of(
            make_spec(box),
            f"""
            import json, os, signal
            out = {{"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
            for pid in ({os.getpid()}, {sleeper.pid}):
                try:
                    os.kill(pid, signal.SIGKILL)
                    out[str(pid)] = "delivered"
                except OSError as exc:
                    out[str(pid)] = exc.__class__.__name__
            try:
                os.kill(-1, signal.SIGKILL)  # everything it may signal: nothing outside
            except OSError:
                pass
            print(json.dumps(out))
            """,
        )
        assert seen["pids"] == [1]
        assert seen[str(os.getpid())] != "delivered" and seen[str(sleeper.pid)] != "delivered"
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_seccomp_refuses_namespaces_mounts_and_ptrace_but_threads_work(box: Path) -> None:
    seen = result_of(
        make_spec(box),
        """
        import ctypes, json, threading
        libc = ctypes.CDLL(None, use_errno=True)
        out = {}
        calls = {
            "unshare_user": lambda: libc.unshare(0x10000000),
            "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
            "ptrace": lambda: libc.ptrace(16, 1, None, None),
            "bpf": lambda: libc.syscall(321, 0, None, 0),
            "clone_newuser": lambda: libc.syscall(56, 0x10000000 | 17, None, None, None, 0),
        }
        for name, call in calls.items():
            rc = call()
            out[name] = (rc, ctypes.get_errno())
        box = []
        t = threading.Thread(target=lambda: box.append("ran"))
        t.start(); t.join()
        out["thread"] = box
        print(json.dumps(out))
        """,
    )
    for name in ("unshare_user", "mount", "ptrace", "bpf", "clone_newuser"):
        assert seen[name] == [-1, 1], name  # EPERM
    assert seen["thread"] == ["ran"]


def test_rlimits_bind_open_files_and_address_space(box: Path) -> None:
    seen = result_of(
        make_spec(box, limits=Limits(open_files=32, processes=64, address_space_bytes=2048 * MIB)),
        """
        import json, resource
        out = {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
               "core": resource.getrlimit(resource.RLIMIT_CORE)}
        handles = []
        try:
            for _ in range(100):
                handles.append(open("/dev/null"))
        except OSError as exc:
            out["open"] = exc.__class__.__name__
        del handles
        try:
            block = bytearray(3 * 1024 ** 3)
            out["alloc"] = "allocated"
        except MemoryError:
            out["alloc"] = "MemoryError"
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
            out["raise"] = "raised"
        except (ValueError, OSError) as exc:
            out["raise"] = exc.__class__.__name__
        print(json.dumps(out))
        """,
    )
    assert seen["nofile"] == [32, 32] and seen["core"] == [0, 0]
    assert seen["open"] == "OSError"  # EMFILE
    assert seen["alloc"] == "MemoryError"
    assert seen["raise"] != "raised"


def _cgroup_usable() -> bool:
    return (
        Path("/sys/fs/cgroup/memory/cgroup.procs").exists()
        or Path("/sys/fs/cgroup/cgroup.controllers").exists()
    )


def test_cgroup_memory_and_pids_limits_bind(box: Path) -> None:
    assert _cgroup_usable(), "this machine was expected to have a writable cgroup hierarchy"
    name = f"kubeserve-test-{os.getpid()}"
    spec = make_spec(
        box,
        limits=Limits(open_files=64, processes=4096),
        cgroup=CgroupLimits(name, memory_bytes=96 * MIB, pids_max=16),
    )
    forks = confined(
        spec,
        """
        import json, os, time
        made, error = 0, None
        pids = []
        try:
            for _ in range(64):
                pid = os.fork()
                if pid == 0:
                    time.sleep(5); os._exit(0)
                pids.append(pid)
        except OSError as exc:
            error = exc.__class__.__name__
        print(json.dumps({"forked": len(pids), "error": error}), flush=True)
        """,
    )
    seen = json.loads(forks.stdout.strip().splitlines()[-1])
    assert seen["error"] == "BlockingIOError" and seen["forked"] < 16  # EAGAIN at pids.max
    hog = confined(
        spec,
        "block = bytearray(512 * 1024 * 1024); block[::4096] = b'x' * (len(block) // 4096); "
        "print('survived')",
    )
    assert "survived" not in hog.stdout
    assert hog.returncode == 128 + signal.SIGKILL  # the kernel's OOM killer, inside the group


def test_a_unix_socket_served_inside_is_reachable_from_the_host(box: Path) -> None:
    sock_path = box / "replica.sock"
    spec = make_spec(box, listen=str(sock_path))
    code = f"""
        import os, socket
        listener = socket.socket(fileno=int(os.environ[{LISTEN_FD_ENV!r}]))
        conn, _ = listener.accept()
        conn.sendall(b"hello from inside " + conn.recv(64))
        conn.close()
    """
    argv = [sys.executable, "-m", "kubeserve_runtime.sandbox", "--spec", spec.to_json()]
    proc = subprocess.Popen([*argv, "--", sys.executable, "-c", textwrap.dedent(code)])
    try:
        reply = b""
        deadline = time.monotonic() + 30
        while not reply and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as client:
                client.connect(str(sock_path))
                client.sendall(b"the host")
                reply = client.recv(64)
            time.sleep(0.02)
        assert reply == b"hello from inside the host"
        assert proc.wait(30) == 0
        assert oct(sock_path.stat().st_mode & 0o777) == "0o600"
    finally:
        proc.kill()


def test_descriptors_it_was_not_given_are_closed(box: Path) -> None:
    directory = os.open(str(box / "secret"), os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(directory, True)
    try:
        seen = result_of(
            make_spec(box),
            "import json, os; print(json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd'))))",  # noqa: E501
            close_fds=False,
        )
    finally:
        os.close(directory)
    assert directory not in seen
    assert set(seen) <= {0, 1, 2, 3}  # 3: listdir's own descriptor


@pytest.fixture
def supervised(box: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A confined process that reports its host pid, starts a grandchild and waits."""
    report_r, report_w = os.pipe()
    spec = make_spec(box)
    code = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "kubeserve_runtime.sandbox", "--spec", spec.to_json()),
            *("--report-fd", str(report_w), "--", sys.executable, "-c", code),
        ],
        pass_fds=[report_w],
        text=True,
    )
    os.close(report_w)
    with os.fdopen(report_r) as fh:
        pid = json.loads(fh.readline())["pid"]
    pidfile = box / "pid"
    pidfile.write_text(str(pid))
    try:
        yield proc, pidfile
    finally:
        proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        proc.wait(10)


def _namespace_members(pid: int) -> list[int]:
    """Host pids of the processes in the PID namespace whose init is `pid`."""
    try:
        target = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    members.append(int(entry))
    return members


def _wait_for(predicate: Any, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_killing_the_confined_process_ends_everything_it_started(
    supervised: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, pidfile = supervised
    pid = int(pidfile.read_text())
    assert _wait_for(lambda: len(_namespace_members(pid)) == 2)  # itself and its `sleep`
    members = _namespace_members(pid)
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: not any(_alive(m) for m in members))
    assert proc.wait(20) == 128 + signal.SIGKILL  # the supervisor reports how it ended


def test_when_the_supervisor_dies_the_confined_process_dies_too(
    supervised: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, pidfile = supervised
    pid = int(pidfile.read_text())
    assert _wait_for(lambda: len(_namespace_members(pid)) == 2)
    members = _namespace_members(pid)
    proc.kill()
    proc.wait(10)
    assert _wait_for(lambda: not any(_alive(m) for m in members))


def test_sigterm_to_the_supervisor_reaches_the_confined_process(box: Path) -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))
        print("ready", flush=True)
        time.sleep(60)
    """
    argv = [sys.executable, "-m", "kubeserve_runtime.sandbox", "--spec", make_spec(box).to_json()]
    proc = subprocess.Popen(
        [*argv, "--", sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 42
    finally:
        proc.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_without_a_sandbox_it_refuses_and_never_runs_the_command(box: Path) -> None:
    """Nested: the inner launcher runs where namespaces are denied (inside a sandbox, whose
    seccomp filter refuses unshare). It must fail - not run the command unconfined."""
    inner = make_spec(box, root_dir="/tmp/inner-root", binds=())
    marker = "/out/ran-unconfined"
    code = f"""
        import os, subprocess, sys, json
        os.makedirs("/tmp/inner-root", exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "kubeserve_runtime.sandbox",
                               "--spec", {inner.to_json()!r}, "--",
                               "sh", "-c", "touch {marker}"], capture_output=True, text=True)
        print(json.dumps({{"rc": done.returncode, "stderr": done.stderr}}))
    """
    seen = result_of(make_spec(box), code)
    assert seen["rc"] == EXIT_SANDBOX_FAILED
    assert "cannot create the sandbox's namespaces" in seen["stderr"]
    assert "user namespaces" in seen["stderr"]  # the message names the fix
    assert not (box / "rw" / "ran-unconfined").exists()


def test_a_missing_root_directory_refuses_with_the_reason(box: Path) -> None:
    spec = make_spec(box, root_dir=str(box / "missing"))
    done = confined(spec, "open('/out/ran', 'w')")
    assert done.returncode == EXIT_SANDBOX_FAILED
    assert "sandbox unavailable" in done.stderr
    assert not (box / "rw" / "ran").exists()


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs the system python")
def test_as_an_unprivileged_platform_user_it_confines_with_a_user_namespace() -> None:
    """The platform run by a normal user: the same probe passes through a user namespace
    (the system interpreter, readable by `nobody`; the runtime copied from this checkout to a
    directory `nobody` can read, since a checkout may live under a private 0700 directory)."""
    package = Path(__file__).resolve().parents[1] / "src" / "kubeserve_runtime"
    readable = Path(tempfile.mkdtemp(prefix="kubeserve-userns-"))
    try:
        shutil.copytree(package, readable / "kubeserve_runtime")
        for path in [readable, *readable.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        done = subprocess.run(
            [
                *("runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={readable}"),
                *("/usr/bin/python3", "-m", "kubeserve_runtime.sandbox", "--probe"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report
    assert report["seen"]["user_namespace"] is True
    assert report["seen"]["CapEff"] == "0000000000000000"


def test_specs_from_json_are_checked() -> None:
    good = SandboxSpec(uid=UID, gid=UID, root_dir="/r", binds=(Bind("/a", "/b", True),))
    assert SandboxSpec.from_json(good.to_json()) == good
    bad_cases: list[dict[str, Any]] = [
        {**good.to_dict(), "uid": 0},
        {**good.to_dict(), "uid": True},
        {**good.to_dict(), "extra": 1},
        {**good.to_dict(), "root_dir": "relative"},
        {**good.to_dict(), "binds": [{"source": "/a/../etc", "target": "/b"}]},
        {**good.to_dict(), "binds": [{"source": "/a", "target": "/proc"}]},
        {**good.to_dict(), "env": {"A": 1}},
        {**good.to_dict(), "cgroup": {"name": "../escape"}},
        {**good.to_dict(), "limits": {"open_files": "many"}},
    ]
    for data in bad_cases:
        with pytest.raises(SpecError):
            SandboxSpec.from_dict(data)
    with pytest.raises(SpecError):
        SandboxSpec.from_json("{not json")


def test_the_seccomp_program_covers_known_machines_only() -> None:
    assert seccomp.build("riscv64") is None
    for machine in ("x86_64", "aarch64"):
        program = seccomp.build(machine)
        assert program is not None and len(program) % 8 == 0 and len(program) // 8 < 4096
