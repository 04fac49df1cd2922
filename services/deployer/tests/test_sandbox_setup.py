"""The local backend's sandbox set-up, on real directories and a real subprocess: the sockets'
fallback directory in the shared temporary directory is refused when someone planted it (a
symlink, another user's directory), and what the sandbox holds without (the probe's warnings,
e.g. no cgroup on this machine) is said in the log and kept, not dropped."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest
from kubeserve_deployer.backends.local.sandboxing import (
    ReplicaLimits,
    ReplicaSandboxes,
    SandboxGate,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")

LIMITS = ReplicaLimits(memory_bytes=256 * 2**20, cpu=0.5)


def _deep(tmp_path: Path) -> Path:
    # Deep enough that its sockets cannot live under it (a Unix socket path is <= 107 bytes).
    return tmp_path / ("d" * 60) / "runtime"


@pytest.mark.parametrize("planted", ["symlink", "foreign"])
def test_a_planted_sockets_directory_is_refused(tmp_path: Path, planted: str) -> None:
    sandboxes = ReplicaSandboxes(_deep(tmp_path), LIMITS)
    assert not sandboxes.sockets.is_relative_to(tmp_path)  # the shared fallback
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    try:
        if planted == "symlink":
            sandboxes.sockets.symlink_to(elsewhere)
        else:
            if os.geteuid() != 0:
                pytest.skip("making another user's directory needs root")
            sandboxes.sockets.mkdir(mode=0o777)
            os.chown(sandboxes.sockets, 65534, 65534)
        with pytest.raises(RuntimeError, match="not a directory of this user's"):
            sandboxes.prepare()
        assert elsewhere.stat().st_mode & 0o777 == 0o755  # nothing chmod-ed through the link
    finally:
        if sandboxes.sockets.is_symlink():
            sandboxes.sockets.unlink()
        else:
            sandboxes.sockets.rmdir()


def test_an_own_sockets_directory_is_made_private(tmp_path: Path) -> None:
    sandboxes = ReplicaSandboxes(_deep(tmp_path), LIMITS)
    try:
        sandboxes.prepare()
        sandboxes.prepare()  # a restart finds its own directory: fine
        assert sandboxes.sockets.stat().st_mode & 0o777 == 0o700
    finally:
        sandboxes.sockets.rmdir()


def _probe_stand_in(tmp_path: Path, verdict: dict[str, object]) -> str:
    """An executable answering `-m kubeserve_runtime.sandbox --probe` with `verdict`."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho '{json.dumps(verdict)}'\n")
    script.chmod(0o755)
    return str(script)


async def test_what_the_sandbox_holds_without_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    warning = "no cgroup limits (rlimits only): Permission denied"
    python = _probe_stand_in(tmp_path, {"ok": True, "reason": "", "seen": {"warnings": [warning]}})
    gate = SandboxGate(python, {})
    with caplog.at_level(logging.WARNING):
        assert await gate.refusal() is None  # still sandboxed: replicas may start
    assert gate.warnings == (warning,)
    assert warning in caplog.text


async def test_a_failed_probe_refuses(tmp_path: Path) -> None:
    python = _probe_stand_in(tmp_path, {"ok": False, "reason": "CapEff is not 0"})
    gate = SandboxGate(python, {})
    refused = await gate.refusal()
    assert refused is not None and "CapEff is not 0" in refused
    assert gate.warnings == ()
