"""The sandbox tenant code runs in: a replica of the local backend, the builder's trial load.

- `spec`: the JSON-serialisable `SandboxSpec` (the only part the control plane may import),
- `core.enter(spec)`: confine the calling (freshly forked) process - namespaces, a new root
  with read-only binds, no network, rlimits and a cgroup, no capabilities, seccomp,
- `python -m kubeserve_runtime.sandbox --spec JSON -- argv...`: confine, then exec argv,
- `python -m kubeserve_runtime.sandbox --probe`: confine a child and report, as JSON, what it
  can see and do (the platform's fail-closed check at start).

Lazy attributes: importing `kubeserve_runtime.sandbox.spec` must not load ctypes or the rest.
"""

from __future__ import annotations

__all__ = ["Confined", "SandboxSpec", "SandboxUnavailable", "enter", "probe"]


def __getattr__(name: str) -> object:
    if name in ("Confined", "SandboxUnavailable", "enter"):
        from kubeserve_runtime.sandbox import core

        return getattr(core, name)
    if name == "SandboxSpec":
        from kubeserve_runtime.sandbox.spec import SandboxSpec

        return SandboxSpec
    if name == "probe":
        from kubeserve_runtime.sandbox.probe import probe

        return probe
    raise AttributeError(name)
