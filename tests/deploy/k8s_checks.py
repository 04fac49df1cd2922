"""Checks shared by the chart tests and the deployer's kubernetes-backend tests: the restricted
pod rules of DESIGN.md section 6, applied to every pod template a chart or the deployer
produces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield obj["spec"]["template"]["spec"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif obj["kind"] == "Pod":
        yield obj["spec"]


def assert_restricted(where: str, pod: dict[str, Any], *, token_allowed: bool) -> None:
    psc = pod.get("securityContext", {})
    assert psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot"
    assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccomp"
    assert pod.get("hostNetwork") in (None, False) and pod.get("hostPID") in (None, False)
    if token_allowed:
        assert pod.get("automountServiceAccountToken") is True, f"{where}: deployer needs its token"
    else:
        assert pod.get("automountServiceAccountToken") is False, (
            f"{where}: token must not be mounted"
        )
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        here = f"{where}/{c['name']}"
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{here}: runAsNonRoot"
        assert sc.get("allowPrivilegeEscalation") is False, f"{here}: allowPrivilegeEscalation"
        assert sc.get("privileged") in (None, False), f"{here}: privileged"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{here}: drop ALL"
        assert not sc.get("capabilities", {}).get("add"), f"{here}: added capabilities"
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{here}: seccomp RuntimeDefault"
        assert sc.get("readOnlyRootFilesystem") is True, f"{here}: readOnlyRootFilesystem"
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        assert uid is not None and uid != 0, f"{here}: numeric non-root uid"
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            assert resources.get(kind, {}).get("cpu"), f"{here}: {kind}.cpu"
            assert resources.get(kind, {}).get("memory"), f"{here}: {kind}.memory"
        # A read-only root needs somewhere to write: /tmp is always a volume.
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{here}: /tmp is not a writable volume"
