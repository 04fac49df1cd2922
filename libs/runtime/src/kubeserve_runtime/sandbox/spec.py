"""What a sandbox looks like from outside: plain, JSON-serialisable dataclasses.

The control plane (deployer, builder) builds a `SandboxSpec` and hands it to trusted launcher
code (the warm pool, `python -m kubeserve_runtime.sandbox`); it may import this module and no
other part of the runtime (an import-linter contract keeps it so: the rest of the runtime loads
models). Nothing here performs I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1024 * 1024

# The file descriptor number and the environment variable through which a confined process
# learns the Unix socket it must serve on (created before confinement, see `SandboxSpec.listen`).
LISTEN_FD_ENV = "KUBESERVE_LISTEN_FD"
# Exit status of a confined process whose confinement failed after the fork (it never ran any
# tenant code); launchers report it as "sandbox failed", not as a model crash.
EXIT_SANDBOX_FAILED = 121


class SpecError(ValueError):
    """A spec that is not well-formed (unknown field, wrong type, relative path...)."""


@dataclass(frozen=True)
class Bind:
    """`source` (a host path) visible at `target` inside; read-only unless `writable`."""

    source: str
    target: str
    writable: bool = False


@dataclass(frozen=True)
class Tmpfs:
    """A private, size-capped, writable tmpfs at `target` (its pages count as the sandbox's
    memory where a memory cgroup applies)."""

    target: str
    size_bytes: int


@dataclass(frozen=True)
class Limits:
    """Resource limits (setrlimit), applied in every sandbox whatever else is available.
    RLIMIT_NPROC counts threads too and is per user: it binds because every sandbox runs as a
    user of its own (with a user namespace, as the platform's user: see the docs)."""

    open_files: int = 1024
    processes: int = 256
    file_size_bytes: int = 1024 * MIB
    address_space_bytes: int | None = None
    cpu_seconds: int | None = None


@dataclass(frozen=True)
class CgroupLimits:
    """A cgroup of its own for the sandbox, `name` being relative to the launcher's own cgroup
    (so the platform's own limits still cover it). Used where a writable hierarchy exists
    (cgroup v1 controllers or v2 with delegation); without one, only `Limits` bind."""

    name: str
    memory_bytes: int | None = None
    cpu: float | None = None  # a fraction of one core (CFS quota)
    pids_max: int | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """Everything `enter()` needs. `root_dir` is an existing empty host directory used as the
    mount point of the sandbox's root (a tmpfs); nothing of the host is visible inside except
    `binds`, the interpreter's own import paths (`python_env`) and a minimal /dev, /etc, /proc.
    `listen`, when set, is a host path where the launcher creates a listening Unix socket
    before confining the process, which receives it as a file descriptor (`LISTEN_FD_ENV`):
    the process needs no writable host path and no network to serve."""

    uid: int
    gid: int
    root_dir: str
    binds: tuple[Bind, ...] = ()
    # The sandbox's own /tmp, and /dev/shm for POSIX semaphores (joblib, multiprocessing).
    tmpfs: tuple[Tmpfs, ...] = (Tmpfs("/tmp", 64 * MIB), Tmpfs("/dev/shm", 16 * MIB))  # noqa: S108
    hostname: str = "sandbox"
    workdir: str = "/tmp"  # noqa: S108
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    cgroup: CgroupLimits | None = None
    seccomp: bool = True
    python_env: bool = True
    listen: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.uid < 2**32 - 1 or not 0 < self.gid < 2**32 - 1:
            raise SpecError("uid and gid must be unprivileged (neither 0 nor -1)")
        paths = [self.root_dir, self.workdir, *(t.target for t in self.tmpfs)]
        paths += [b.target for b in self.binds] + [b.source for b in self.binds]
        if self.listen is not None:
            paths.append(self.listen)
        for path in paths:
            if not path.startswith("/") or "\0" in path or "/../" in f"{path}/":
                raise SpecError(f"paths must be absolute, without '..': {path!r}")
        for target in [b.target for b in self.binds] + [t.target for t in self.tmpfs]:
            if target.rstrip("/") in ("", "/proc", "/dev", "/etc"):
                raise SpecError(f"{target!r} is managed by the sandbox itself")
        if self.cgroup is not None:
            name = self.cgroup.name
            if not name or name.startswith("/") or ".." in name.split("/"):
                raise SpecError(f"cgroup name must be a relative path: {name!r}")

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env"] = dict(self.env)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> SandboxSpec:
        if not isinstance(data, dict):
            raise SpecError("a sandbox spec is a JSON object")
        fields = dict(data)
        try:
            fields["binds"] = tuple(_build(Bind, b) for b in fields.get("binds") or ())
            if "tmpfs" in fields:
                fields["tmpfs"] = tuple(_build(Tmpfs, t) for t in fields["tmpfs"] or ())
            if "limits" in fields:
                fields["limits"] = _build(Limits, fields["limits"])
            if fields.get("cgroup") is not None:
                fields["cgroup"] = _build(CgroupLimits, fields["cgroup"])
            env = fields.get("env") or {}
            if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()
            ):
                raise SpecError("env must map strings to strings")
            fields["env"] = env
            spec: SandboxSpec = _build(cls, fields)
        except TypeError as exc:
            raise SpecError(f"invalid sandbox spec: {exc}") from None
        return spec

    @classmethod
    def from_json(cls, text: str) -> SandboxSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"a sandbox spec is JSON: {exc}") from None
        return cls.from_dict(data)


_TYPES: dict[str, tuple[type, ...]] = {
    "uid": (int,),
    "gid": (int,),
    "size_bytes": (int,),
    "open_files": (int,),
    "processes": (int,),
    "file_size_bytes": (int,),
    "address_space_bytes": (int, type(None)),
    "cpu_seconds": (int, type(None)),
    "memory_bytes": (int, type(None)),
    "pids_max": (int, type(None)),
    "cpu": (int, float, type(None)),
    "writable": (bool,),
    "seccomp": (bool,),
    "python_env": (bool,),
    "listen": (str, type(None)),
}


def _build(cls: Any, data: Any) -> Any:
    """`cls(**data)` with the scalar types checked (JSON from another process is not trusted to
    be well-formed; a bool is not accepted as an int)."""
    if not isinstance(data, dict):
        raise SpecError(f"{cls.__name__} must be a JSON object")
    for key, value in data.items():
        allowed = _TYPES.get(key, (str,) if key in _STRINGS else None)
        if allowed is None:
            continue
        if isinstance(value, bool) and bool not in allowed:
            raise SpecError(f"{cls.__name__}.{key} has the wrong type")
        if not isinstance(value, allowed):
            raise SpecError(f"{cls.__name__}.{key} has the wrong type")
    return cls(**data)


_STRINGS = frozenset({"source", "target", "root_dir", "hostname", "workdir", "name"})
