"""Local replicas run sandboxed (issue 11): checked from outside, on the real processes of a
real deploy - the confined process's credentials, namespaces and view of the files; the
artifact cache re-hashed on every start; fail closed where no sandbox can be had; the opt-out."""

from __future__ import annotations

import os
import signal
import stat
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployer_helpers import Deployer, Seeder, predict, runtime_processes
from kubeserve_common.testing.waiting import wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    text = fh.read()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


async def _deploy(deployer: Deployer, seeder: Seeder, owner: uuid.UUID) -> tuple[str, Any]:
    model_id = await seeder.model(owner, name="iris")
    v1 = await seeder.version(owner, model_id, "v1", seeder.models.v1)
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(v1.version_id)})
        assert created.status_code == 202, created.text
    return created.json()["id"], v1


async def test_a_replica_is_confined_and_serves_on_a_unix_socket_only(
    deployer: Deployer, seeder: Seeder, runtime_dir: Path, tmp_path: Path
) -> None:
    owner = uuid.uuid4()
    dep, _ = await _deploy(deployer, seeder, owner)
    await deployer.wait_status(owner, dep, "Running")
    [endpoint] = await deployer.wait_route(dep, 1)
    assert endpoint.startswith("unix:") and endpoint.endswith(".sock")
    assert await predict(endpoint) == seeder.models.v1_expected

    [supervisor] = runtime_processes(runtime_dir)
    [confined] = _children(supervisor)
    _check_confinement(confined, endpoint, runtime_dir, tmp_path)


def _check_confinement(confined: int, endpoint: str, runtime_dir: Path, tmp_path: Path) -> None:
    status = _status(confined)
    uid = int(status["Uid"].split()[0])
    assert uid not in (0, os.getuid())
    assert {int(u) for u in status["Uid"].split()} == {uid}
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["CapBnd"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    # Its own PID namespace (it is pid 1 there) and network namespace (loopback only).
    assert status["NSpid"].split()[-1] == "1"
    assert os.readlink(f"/proc/{confined}/ns/net") != os.readlink("/proc/self/ns/net")
    with open(f"/proc/{confined}/net/dev") as fh:
        interfaces = {line.split(":")[0].strip() for line in fh.readlines()[2:]}
    assert interfaces == {"lo"}
    # Its view of the files: its artifact (read-only), no platform home, cache or state.
    root = Path(f"/proc/{confined}/root")
    assert [p.name for p in (root / "model").iterdir()] == ["model.joblib"]
    for hidden in (runtime_dir, tmp_path / "home", runtime_dir / "cache", runtime_dir / "replicas"):
        assert not (root / str(hidden).lstrip("/")).exists(), hidden
    with pytest.raises(OSError):
        (root / "model" / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(OSError):
        (root / "model" / "planted").write_bytes(b"x")
    # The socket is the platform user's alone.
    socket_path = Path(endpoint.removeprefix("unix:"))
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700


async def test_a_tampered_cache_entry_is_fetched_again_at_the_next_start(
    deployer: Deployer, seeder: Seeder, runtime_dir: Path
) -> None:
    owner = uuid.uuid4()
    dep, version = await _deploy(deployer, seeder, owner)
    await deployer.wait_status(owner, dep, "Running")
    [cached] = list((runtime_dir / "cache").glob("*/model.joblib"))
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444  # read-only to everyone
    # Someone replaces the cached model (what a replica could do if the cache were writable).
    os.chmod(cached.parent, 0o755)
    os.chmod(cached, 0o644)
    cached.write_bytes(seeder.models.v2)
    [supervisor] = runtime_processes(runtime_dir)
    os.killpg(supervisor, signal.SIGKILL)

    async def restarted_with_the_real_model() -> bool:
        route = (await deployer.route(dep)).json()
        live = runtime_processes(runtime_dir)
        if len(route.get("endpoints") or []) != 1 or supervisor in live:
            return False
        try:
            return await predict(route["endpoints"][0]) == seeder.models.v1_expected
        except httpx.HTTPError:
            return False  # the route still lists the killed replica until the next pass

    await wait_until(restarted_with_the_real_model, timeout=60, message="a clean restart")
    got = await deployer.wait_status(owner, dep, "Running")
    kinds = {e["kind"]: e["message"] for e in got["events"]}
    assert "artifact_refetched" in kinds, got["events"]
    assert "fetched again" in kinds["artifact_refetched"]
    assert cached.read_bytes() == seeder.models.v1
    assert version.version_id  # the version itself was never touched


@pytest.fixture
def no_sys_admin_python(tmp_path: Path) -> str:
    """An interpreter without CAP_SYS_ADMIN (like an unprivileged container): it cannot
    create the sandbox's namespaces."""
    wrapper = tmp_path / "python-no-sys-admin"
    wrapper.write_text(
        f"#!/bin/sh\nexec setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin "
        f'{sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.skipif(os.geteuid() != 0, reason="drops CAP_SYS_ADMIN from a root interpreter")
async def test_no_sandbox_means_refusal_not_an_unconfined_replica(
    start_deployer: Any, seeder: Seeder, runtime_dir: Path, no_sys_admin_python: str
) -> None:
    deployer = await start_deployer(runtime_python=no_sys_admin_python)
    owner = uuid.uuid4()
    dep, _ = await _deploy(deployer, seeder, owner)
    failed = await deployer.wait_status(owner, dep, "Failed")
    assert "refusing to run uploaded models" in failed["failure_reason"]
    assert (
        "CAP_SYS_ADMIN" in failed["failure_reason"]
        and "--insecure-no-sandbox" in failed["failure_reason"]
    )
    assert runtime_processes(runtime_dir) == set()  # nothing of the tenant ever ran


async def test_the_insecure_opt_out_serves_on_a_port(
    start_deployer: Any, seeder: Seeder, runtime_dir: Path
) -> None:
    deployer = await start_deployer(insecure_no_sandbox=True)
    owner = uuid.uuid4()
    dep, _ = await _deploy(deployer, seeder, owner)
    await deployer.wait_status(owner, dep, "Running")
    [endpoint] = await deployer.wait_route(dep, 1)
    assert endpoint.startswith("http://127.0.0.1:")
    assert await predict(endpoint) == seeder.models.v1_expected
    [pid] = runtime_processes(runtime_dir)
    assert int(_status(pid)["Uid"].split()[0]) == os.getuid()  # what the opt-out means
