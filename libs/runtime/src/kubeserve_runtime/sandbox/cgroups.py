"""A cgroup of its own for a sandbox: memory, CPU quota and process count, where the machine
has a writable hierarchy (cgroup v1 controllers, or a v2 tree with the controllers delegated).

The group is created below the launcher's *own* cgroup, so whatever limits the platform runs
under still cover its replicas, and a platform in a container or a systemd scope stays inside
what it was given. Creating, filling and joining happen in the launcher's forked child before
it confines itself; removing an emptied group is the launcher's job (`remove`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from kubeserve_runtime.sandbox.spec import CgroupLimits

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class Joined:
    dirs: tuple[str, ...]  # the group's directories (one per v1 controller, or the v2 one)
    controllers: tuple[str, ...]


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


def _v1_dir(controller: str, own: dict[str, str]) -> Path | None:
    mount = CGROUP_ROOT / controller
    base = own.get(controller)
    if base is None or not (mount / "cgroup.procs").exists():
        return None
    return mount / base.lstrip("/")


def join(limits: CgroupLimits) -> Joined:
    """Create the group, set its limits and move the calling process into it. Raises OSError
    when no controller could be used (the caller then relies on rlimits alone)."""
    own = _own_paths()
    pid = str(os.getpid())
    dirs: list[str] = []
    used: list[str] = []
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # a pure v2 machine
        base = CGROUP_ROOT / own.get("", "/").lstrip("/")
        group = base / limits.name
        _prepare_v2(base, limits.name)
        _limit_v2(group, limits)
        _write(group / "cgroup.procs", pid)
        return Joined((str(group),), ("memory", "cpu", "pids"))
    wanted = {
        "memory": limits.memory_bytes is not None,
        "cpu": limits.cpu is not None,
        "pids": limits.pids_max is not None,
    }
    errors: list[str] = []
    for controller, needed in wanted.items():
        if not needed:
            continue
        parent = _v1_dir(controller, own)
        if parent is None:
            errors.append(f"{controller}: no v1 hierarchy")
            continue
        group = parent / limits.name
        try:
            group.mkdir(parents=True, exist_ok=True)
            _limit_v1(controller, group, limits)
            _write(group / "cgroup.procs", pid)
        except OSError as exc:
            errors.append(f"{controller}: {exc.strerror or exc}")
            continue
        dirs.append(str(group))
        used.append(controller)
    if not used and errors:
        raise OSError(0, "no usable cgroup controller (" + "; ".join(errors) + ")")
    return Joined(tuple(dirs), tuple(used))


def _limit_v1(controller: str, group: Path, limits: CgroupLimits) -> None:
    if controller == "memory" and limits.memory_bytes is not None:
        _write(group / "memory.limit_in_bytes", str(limits.memory_bytes))
        # Swap would let the group use more than its limit; absent without swap accounting.
        with contextlib.suppress(OSError):
            _write(group / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
    elif controller == "cpu" and limits.cpu is not None:
        _write(group / "cpu.cfs_period_us", str(_CFS_PERIOD_US))
        _write(group / "cpu.cfs_quota_us", str(max(1000, int(limits.cpu * _CFS_PERIOD_US))))
    elif controller == "pids" and limits.pids_max is not None:
        _write(group / "pids.max", str(limits.pids_max))


def _prepare_v2(base: Path, name: str) -> None:
    # From the launcher's own group down, each level must delegate the controllers to the
    # next. A group holding processes cannot (v2's no-internal-process rule, the root aside):
    # that fails here, and the caller falls back to rlimits.
    current = base
    for part in Path(name).parts:
        _write(current / "cgroup.subtree_control", "+memory +cpu +pids")
        current = current / part
        current.mkdir(exist_ok=True)


def _limit_v2(group: Path, limits: CgroupLimits) -> None:
    if limits.memory_bytes is not None:
        _write(group / "memory.max", str(limits.memory_bytes))
        with contextlib.suppress(OSError):
            _write(group / "memory.swap.max", "0")
    if limits.cpu is not None:
        quota = max(1000, int(limits.cpu * _CFS_PERIOD_US))
        _write(group / "cpu.max", f"{quota} {_CFS_PERIOD_US}")
    if limits.pids_max is not None:
        _write(group / "pids.max", str(limits.pids_max))


def remove(dirs: list[str] | tuple[str, ...]) -> bool:
    """Remove the groups (and their emptied parents up to the launcher's name prefix); False
    while a process is still in one (EBUSY) - the caller retries later."""
    done = True
    for path in dirs:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError:
            done = False
    return done
