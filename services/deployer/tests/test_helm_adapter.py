"""The pyhelm3 adapter's helm commands, against a fake `helm` executable the test writes on PATH
(no helm CLI can run here): it records each argv and stdin, and answers JSON the way helm 3
does. Checks the commands the adapter runs (no --wait, the tenant namespace, no
--create-namespace, values on stdin), how answers and errors are read, and that the deployer
needs neither helm nor the cluster libraries on the local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kubeserve_deployer.backends.kubernetes.helm import HelmError, Pyhelm3Helm, classify_helm_error

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "model-serving"

FAKE_HELM = textwrap.dedent(
    '''
    #!{python}
    """A fake of the helm 3 CLI: records argv/stdin, keeps releases in a JSON file."""
    import json, os, sys, time
    from pathlib import Path

    state_dir = Path(os.environ["FAKE_HELM_DIR"])
    args = sys.argv[1:]
    stdin = sys.stdin.read() if "-" in args else ""
    with open(state_dir / "calls.jsonl", "a") as fh:
        fh.write(json.dumps({{"argv": args, "stdin": stdin}}) + "\\n")
    state_file = state_dir / "releases.json"
    releases = json.loads(state_file.read_text()) if state_file.exists() else {{}}
    fail = state_dir / "fail"
    if fail.exists() and args[0] != "version":
        mode = fail.read_text()
        if mode == "hang":
            time.sleep(60)
        sys.stderr.write(mode)
        sys.exit(1)

    def opt(name, default=None):
        return args[args.index(name) + 1] if name in args else default

    cmd = args[0]
    if cmd == "version":
        print("v3.16.3", end="")
    elif cmd == "show" and args[1] == "chart":
        print(Path(args[2], "Chart.yaml").read_text())
    elif cmd == "upgrade":
        name, ns = args[1], opt("--namespace", "default")
        key = ns + "/" + name
        old = releases.get(key)
        release = {{
            "name": name, "namespace": ns, "version": (old["version"] + 1) if old else 1,
            "info": {{"status": "deployed", "last_deployed": "2026-11-26T09:00:00Z",
                      "description": opt("--description",
                                         "Upgrade complete" if old else "Install complete")}},
            "chart": {{"metadata": {{"name": "model-serving", "version": "0.1.0",
                                     "apiVersion": "v2"}}}},
            "config": json.loads(stdin or "{{}}"),
            "manifest": "apiVersion: v1\\nkind: Service\\nmetadata:\\n  name: " + name,
        }}
        releases[key] = release
        print(json.dumps(release))
    elif cmd == "status":
        key = opt("--namespace", "default") + "/" + args[1]
        if key not in releases:
            sys.stderr.write("Error: release: not found")
            sys.exit(1)
        print(json.dumps(releases[key]))
    elif cmd == "list":
        print(json.dumps([
            {{"name": r["name"], "namespace": r["namespace"], "revision": str(r["version"]),
              "status": r["info"]["status"], "chart": "model-serving-0.1.0"}}
            for r in releases.values()
        ]))
    elif cmd == "rollback":
        print("Rollback was a success! Happy Helming!")
    elif cmd == "uninstall":
        key = opt("--namespace", "default") + "/" + args[1]
        if releases.pop(key, None) is None:
            sys.stderr.write("Error: uninstall: Release not loaded: release: not found")
            sys.exit(1)
        print("release uninstalled")
    else:
        sys.stderr.write("unknown command " + cmd)
        sys.exit(1)
    state_file.write_text(json.dumps(releases))
    '''
).lstrip()


class FakeHelmCli:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def calls(self) -> list[dict[str, Any]]:
        path = self.dir / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def argv(self, command: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls() if c["argv"][0] == command]

    def fail_with(self, stderr: str | None) -> None:
        path = self.dir / "fail"
        if stderr is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(stderr)


@pytest.fixture
def helm_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHelmCli:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "helm"
    script.write_text(FAKE_HELM.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELM_DIR", str(tmp_path))
    return FakeHelmCli(tmp_path)


VALUES = {
    "deploymentId": "5b0e6c1a-0000-4000-8000-000000000001",
    "tenant": "0b7d6f1c-2a9e-4c3e-9a51-2d8e4f7b1c01",
    "model": {"name": "iris", "uri": "s3://kubeserve/models/u/m/v1/"},
    "replicaCount": 2,
}
NAME = "kubeserve-5b0e6c1a-0000-4000-8000-000000000001"
NS = "user-0b7d6f1c-2a9e-4c3e-9a51-2d8e4f7b1c01"


async def test_pyhelm3_adapter_runs_the_expected_helm_commands(helm_cli: FakeHelmCli) -> None:
    helm = Pyhelm3Helm(CHART, timeout=30)
    await helm.start()
    assert helm_cli.argv("show")[0][:3] == ["show", "chart", str(CHART)]

    release = await helm.install_or_upgrade(NAME, NS, VALUES, description="kubeserve revision 1")
    assert (release.name, release.namespace, release.revision) == (NAME, NS, 1)
    assert release.status == "deployed"
    (install,) = [c for c in helm_cli.calls() if c["argv"][0] == "upgrade"]
    argv = install["argv"]
    assert argv[:3] == ["upgrade", NAME, str(CHART)]
    assert "--install" in argv and argv[argv.index("--namespace") + 1] == NS
    assert argv[argv.index("--values") + 1] == "-" and json.loads(install["stdin"]) == VALUES
    # The loop polls the rollout: helm never blocks on it; provisioning owns the namespace.
    assert "--wait" not in argv and "--create-namespace" not in argv and "--atomic" not in argv
    assert argv[argv.index("--timeout") + 1] == "30s"
    assert argv[argv.index("--description") + 1] == "kubeserve revision 1"

    status = await helm.status(NAME, NS)
    assert status is not None and status.values == VALUES and status.revision == 1
    assert await helm.status("kubeserve-missing", NS) is None

    again = await helm.install_or_upgrade(NAME, NS, {**VALUES, "replicaCount": 3})
    assert again.revision == 2

    (listed,) = await helm.list_releases()
    assert (listed.name, listed.namespace, listed.revision, listed.status) == (
        NAME,
        NS,
        2,
        "deployed",
    )
    list_argv = helm_cli.argv("list")[0]
    assert "--all-namespaces" in list_argv
    assert {"--deployed", "--failed", "--pending"} <= set(list_argv)

    await helm.rollback(NAME, NS, 1)
    rollback = helm_cli.argv("rollback")[0]
    assert rollback[:3] == ["rollback", NAME, "1"] and "--wait" not in rollback
    assert rollback[rollback.index("--namespace") + 1] == NS

    await helm.uninstall(NAME, NS)
    await helm.uninstall(NAME, NS)  # already gone: not an error
    assert [a[:2] for a in helm_cli.argv("uninstall")] == [["uninstall", NAME]] * 2
    assert await helm.list_releases() == []


@pytest.mark.parametrize(
    ("stderr", "transient"),
    [
        (
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
            True,
        ),
        ("Error: Kubernetes cluster unreachable: dial tcp 10.96.0.1:443: i/o timeout", True),
        ("Error: etcdserver: request timed out", True),
        ('Error: deployments.apps "x" is forbidden: User cannot patch resource', False),
        ("Error: values don't meet the specifications of the schema(s): replicaCont", False),
        ('Error: Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1', False),
        (
            "Error: execution error at (model-serving/templates/x.yaml): model.uri is required",
            False,
        ),
    ],
)
async def test_helm_errors_are_classified(
    helm_cli: FakeHelmCli, stderr: str, transient: bool
) -> None:
    helm = Pyhelm3Helm(CHART, timeout=30)
    await helm.start()
    helm_cli.fail_with(stderr)
    with pytest.raises(HelmError) as caught:
        await helm.install_or_upgrade(NAME, NS, VALUES)
    assert caught.value.transient is transient
    assert stderr.split(":")[0] in str(caught.value)


async def test_a_hung_helm_command_is_bounded(helm_cli: FakeHelmCli) -> None:
    helm = Pyhelm3Helm(CHART, timeout=1)
    await helm.start()
    helm_cli.fail_with("hang")
    with pytest.raises(HelmError) as caught:
        await helm.status(NAME, NS)
    assert caught.value.transient and "no answer within" in str(caught.value)


async def test_a_cluster_without_the_service_monitor_crd_is_named_with_the_fix(
    helm_cli: FakeHelmCli,
) -> None:
    helm = Pyhelm3Helm(CHART, timeout=30)
    await helm.start()
    helm_cli.fail_with(
        "Error: unable to build kubernetes objects from release manifest: resource mapping not "
        'found for name: "kubeserve-x": no matches for kind "ServiceMonitor" in version '
        '"monitoring.coreos.com/v1"\nensure CRDs are installed first'
    )
    with pytest.raises(HelmError) as caught:
        await helm.install_or_upgrade(NAME, NS, VALUES)
    assert caught.value.transient is False  # retrying cannot install the CRDs
    assert "KUBESERVE_K8S_SERVICE_MONITOR=false" in str(caught.value)


def test_error_classification_defaults_to_permanent_for_the_unknown() -> None:
    assert classify_helm_error("Error: something nobody expected") is False
    assert classify_helm_error("Error: the server is currently unable to handle the request")


async def test_without_helm_the_kubernetes_backend_refuses_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm anywhere
    with pytest.raises(HelmError, match="needs the helm binary") as caught:
        await Pyhelm3Helm(CHART).start()
    assert caught.value.transient is False


def test_the_local_backend_loads_neither_helm_nor_kubernetes_libraries(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from kubeserve_deployer.bootstrap import bootstrap
        from kubeserve_deployer.settings import DeployerSettings
        c = bootstrap(DeployerSettings(dev_mode=True, home=sys.argv[1], runtime_backend="local"))
        assert c.backend.name == "local"
        loaded = {"pyhelm3", "kubernetes_asyncio"} & set(sys.modules)
        assert not loaded, loaded
        """
    )
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # and no helm on PATH
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, timeout=120)


def test_the_kubernetes_backend_is_built_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
    from kubeserve_deployer.bootstrap import bootstrap
    from kubeserve_deployer.settings import DeployerSettings

    monkeypatch.setenv("KUBESERVE_K8S_INGRESS_ENABLED", "true")
    monkeypatch.setenv("KUBESERVE_K8S_INGRESS_HOSTNAME", "ml.example.com")
    monkeypatch.setenv("KUBESERVE_K8S_S3_ENDPOINT_URL", "http://minio.minio.svc:9000")
    container = bootstrap(
        DeployerSettings(
            dev_mode=True,
            home=tmp_path,
            runtime_backend="kubernetes",
            artifact_store_url="s3://kubeserve",
            s3_endpoint_url="http://127.0.0.1:9000",
        )
    )
    backend = container.backend
    assert isinstance(backend, KubernetesBackend)
    assert backend.config.ingress_hostname == "ml.example.com"
    assert backend.elector is not None  # the chart may run several replicas
    # URLs are signed for the endpoint pods reach, listing uses the deployer's own.
    assert backend.artifacts.signer.endpoint_url == "http://minio.minio.svc:9000"  # type: ignore[attr-defined]
    assert backend.artifacts.store is container.store
    assert container.tenants.provisioner is backend
    # Every backend consumes user events (a deleted user's deployments stop); only this one
    # retires the tenant's namespace after the grace period.
    purposes = {c.subscription.queue.rsplit(".", 1)[-1] for c in container.consumers}
    assert {"users", "tenant-retire"} <= purposes
    local = bootstrap(DeployerSettings(dev_mode=True, home=tmp_path / "l"))
    local_purposes = {c.subscription.queue.rsplit(".", 1)[-1] for c in local.consumers}
    assert "users" in local_purposes and "tenant-retire" not in local_purposes


def test_the_kubernetes_backend_refuses_a_store_it_cannot_presign(tmp_path: Path) -> None:
    from kubeserve_deployer.bootstrap import bootstrap
    from kubeserve_deployer.settings import DeployerSettings

    with pytest.raises(ValueError, match="needs an S3 artifact store"):
        bootstrap(DeployerSettings(dev_mode=True, home=tmp_path, runtime_backend="kubernetes"))
