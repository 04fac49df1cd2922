"""Issue 11's hostile second tenant, on the embedded platform as the README runs it
(`kubeserve up`, real processes): tenant B deploys a model whose class comes from B's own wheel
and whose predictions carry out the probes they are given - read every file of the platform's
home (signing keys, secrets, each database, tenant A's artifact and cache), list the home,
write into the home and over A's artifact and cache, connect to every port the platform
listens on, signal the platform's process, report its uid and CapEff. Every probe is refused,
and A's predictions are unchanged, including after A's replica restarts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from kubeserve_sdk import Client
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import Platform, embedded

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")

PKG = "kubeserve-prober"
PKG_VERSION = "0.1.0"
MODULE = "ks_prober"
# B's own package: its class is the model, and predict() runs the probes it is given (one JSON
# string per row) and answers what happened to each, as JSON.
SOURCE = r"""
import errno, json, os, signal, socket

import numpy as np


def _err(exc):
    return "refused:" + errno.errorcode.get(getattr(exc, "errno", 0) or 0, type(exc).__name__)


class Prober:
    n_features_in_ = 1

    def predict(self, x):
        rows = np.asarray(x, dtype=object).reshape(len(x), -1)
        return [self._run(row[0]) for row in rows]

    def _run(self, cell):
        if not isinstance(cell, str):
            return "0"  # the builder's smoke prediction
        probes = json.loads(cell)
        seen = {"read": {}, "list": {}, "write": {}, "connect": {}, "signal": {}}
        for path in probes.get("read", []):
            try:
                with open(path, "rb") as fh:
                    fh.read(16)
                seen["read"][path] = "READ"
            except OSError as exc:
                seen["read"][path] = _err(exc)
        for path in probes.get("list", []):
            try:
                seen["list"][path] = "LISTED:" + ",".join(sorted(os.listdir(path))[:5])
            except OSError as exc:
                seen["list"][path] = _err(exc)
        for path in probes.get("write", []):
            try:
                with open(path, "ab") as fh:
                    fh.write(b"owned by tenant B")
                seen["write"][path] = "WRITTEN"
            except OSError as exc:
                seen["write"][path] = _err(exc)
        for port in probes.get("connect", []):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    seen["connect"][str(port)] = "CONNECTED"
            except OSError as exc:
                seen["connect"][str(port)] = _err(exc)
        for pid in probes.get("signal", []):
            try:
                os.kill(pid, 0)
                seen["signal"][str(pid)] = "DELIVERED"
            except OSError as exc:
                seen["signal"][str(pid)] = _err(exc)
        with open("/proc/self/status") as fh:
            status = dict(l.rstrip("\n").split(":\t", 1) for l in fh if ":\t" in l)
        seen["uid"] = os.getuid()
        seen["CapEff"] = status["CapEff"].strip()
        return json.dumps(seen)
"""
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_prober_wheel(root: Path) -> tuple[Path, Path]:
    dist_info = f"kubeserve_prober-{PKG_VERSION}.dist-info"
    files = {
        f"{MODULE}/__init__.py": SOURCE.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PKG}\nVersion: {PKG_VERSION}\n"
            "Requires-Dist: numpy>=1.20\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kubeserve-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    (root / "files").mkdir(parents=True)
    wheel = root / "files" / f"kubeserve_prober-{PKG_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    unpacked = root / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    return wheel, unpacked


def prober_pickle(unpacked: Path, path: Path) -> Path:
    import importlib

    sys.path.insert(0, str(unpacked))
    try:
        cls = importlib.import_module(MODULE).Prober
        joblib.dump(cls(), path)
    finally:
        sys.path.remove(str(unpacked))
        sys.modules.pop(MODULE, None)
    return path


def listening_ports(pid: int) -> list[int]:
    """TCP ports the process listens on (from /proc: its socket inodes in net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    text = fh.read()
            except OSError:
                continue
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Platform, Path]]:
    wheel, unpacked = make_prober_wheel(tmp_path / "index")
    env = {"KUBESERVE_WHEEL_FIND_LINKS": str(wheel.parent)}
    with embedded(tmp_path / "home", env=env) as running:
        yield running, unpacked


def _wait_predictions(client: Client, deployment_id: str, expected: Any) -> None:
    deadline = time.monotonic() + 60
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = client.predict(deployment_id, {"instances": IRIS_ROWS})["predictions"]
            if last == expected:
                return
        except Exception as exc:  # restarting: 503 until the new replica is ready
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"A's predictions did not come back: {last!r}")


def test_a_hostile_tenant_is_refused_everything(
    platform: tuple[Platform, Path], tmp_path: Path
) -> None:
    running, unpacked = platform
    home = running.home
    platform_pid = running.processes["up"].pid

    # -- tenant A: an ordinary iris model ----------------------------------------------------
    X, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "iris.joblib")
    a = Client(running.url)
    a.register("a@example.com", "tenant a passphrase 1")
    a.login("a@example.com", "tenant a passphrase 1")
    model_a = a.create_model("iris", framework="sklearn")
    version_a = a.wait_for_version(
        model_a["id"], a.push(model_a["id"], tmp_path / "iris.joblib")["id"], timeout=180
    )
    assert version_a["status"] == "Ready", version_a
    dep_a = a.wait_for_deployment(a.deploy(version_a["id"])["id"], timeout=180)
    assert dep_a["status"] == "Running", dep_a
    before = a.predict(dep_a["id"], {"instances": IRIS_ROWS})["predictions"]

    # -- tenant B: the prober, its class from B's own wheel ------------------------------------
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{PKG}=={PKG_VERSION}\n")
    b = Client(running.url)
    b.register("b@example.com", "tenant b passphrase 2")
    b.login("b@example.com", "tenant b passphrase 2")
    model_b = b.create_model("prober", framework="sklearn")
    pushed = b.push(model_b["id"], prober_pickle(unpacked, tmp_path / "p.joblib"), requirements)
    version_b = b.wait_for_version(model_b["id"], pushed["id"], timeout=180)
    assert version_b["status"] == "Ready", version_b
    dep_b = b.wait_for_deployment(b.deploy(version_b["id"])["id"], timeout=180)
    assert dep_b["status"] == "Running", dep_b

    # -- the probes: everything of the platform B's code must not touch ------------------------
    files = sorted(str(p) for p in home.rglob("*") if p.is_file() and not p.is_symlink())
    a_user = a.me()["id"]
    a_artifacts = [f for f in files if "/artifacts/" in f and a_user in f]
    a_cache = [f for f in files if "/runtime/cache/" in f and f.endswith("iris.joblib")]
    assert all(not f.endswith(".sock") for f in files)
    secrets = [f for f in files if (os.stat(f).st_mode & 0o077) == 0 and "/db/" not in f]
    databases = [f for f in files if f.endswith(".db")]
    assert a_artifacts and a_cache and databases and secrets, files
    ports = listening_ports(platform_pid)
    assert ports, "the platform listens on its gateway and internal ports"
    probes = {
        "read": files,
        "list": [str(home), str(home / "runtime"), str(home / "db")],
        "write": [str(home / "planted"), *a_artifacts, *a_cache],
        "connect": ports,
        "signal": [platform_pid, *sorted(descendants(platform_pid))[:20]],
    }
    answer = b.predict(dep_b["id"], {"instances": [[json.dumps(probes)]]})
    [seen] = [json.loads(p) for p in answer["predictions"]]

    allowed = {
        k: {t: r for t, r in seen[k].items() if not r.startswith("refused:")} for k in probes
    }
    assert allowed == {k: {} for k in probes}, allowed
    assert len(seen["read"]) == len(files) and len(seen["connect"]) == len(ports)
    assert seen["uid"] not in (0, os.getuid())
    assert seen["CapEff"] == "0000000000000000"
    assert not (home / "planted").exists()

    # -- A is untouched, also after its replica restarts (a cache hit is re-verified) ------------
    assert a.predict(dep_a["id"], {"instances": IRIS_ROWS})["predictions"] == before
    states = [json.loads(p.read_text()) for p in (home / "runtime" / "replicas").glob("*.json")]
    [replica_a] = [s for s in states if s.get("deployment_id") == dep_a["id"] and "pid" in s]
    os.killpg(int(replica_a["pid"]), signal.SIGKILL)
    _wait_predictions(a, dep_a["id"], before)
