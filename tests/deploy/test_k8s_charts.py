"""The charts against a real Kubernetes API server (marked `k8s`; skipped unless KUBECONFIG points
at a reachable cluster, e.g. kind 1.30+): server-side dry-run installs of both charts, and every
pod template they render admitted as a Pod by Pod Security admission in a namespace that
enforces the restricted standard. Nothing is left behind but the namespace chart, which the
test uninstalls."""

from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.k8s

helm = pytest.importorskip("helm_python", reason="test dependency helm-python-sdk is missing")

CHARTS = Path(__file__).resolve().parents[2] / "charts"
MODEL_SERVING = {
    "deploymentId": "d-k8s-test",
    "tenant": "k8s-test",
    "model": {"name": "iris", "uri": "s3://kubeserve/models/k8s-test/iris/v1/"},
}
KUBESERVE = {
    "secrets": {
        "internalSecret": "k8s-test-internal-secret-0123456789",
        "jwtPrivateKey": "-----BEGIN PRIVATE KEY-----\nunused\n-----END PRIVATE KEY-----\n",
    },
    "externalDatabase": {"host": "postgresql.example", "password": "pw"},
    "externalRabbitmq": {"host": "rabbitmq.example", "password": "pw"},
    # Unique cluster-scoped names: RBAC and the admission policy carry the release namespace.
}


@pytest.fixture(scope="module")
def cluster() -> Any:
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("KUBECONFIG is not set: no cluster for the k8s suite")
    config = helm.Config(
        kubeconfig_path=os.environ["KUBECONFIG"], namespace="default", storage_driver="secret"
    )
    try:
        config.check_reachable()
    except helm.HelmError as exc:
        pytest.fail(f"KUBECONFIG is set but its cluster is unreachable: {exc}")
    return config


@pytest.fixture(scope="module")
def restricted_namespace(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A fresh namespace enforcing the restricted Pod Security Standard (made by a tiny chart)."""
    name = f"kubeserve-test-{uuid.uuid4().hex[:8]}"
    chart_dir = tmp_path_factory.mktemp("ns-chart")
    (chart_dir / "templates").mkdir()
    (chart_dir / "Chart.yaml").write_text("apiVersion: v2\nname: test-namespace\nversion: 0.1.0\n")
    (chart_dir / "templates" / "namespace.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            }
        )
    )
    cluster.install(
        helm.Chart.load(chart_dir), name, namespace="default", wait="watcher", timeout=60
    )
    yield name
    cluster.uninstall(name, wait="watcher", timeout=120, ignore_not_found=True)


def rendered_objects(chart: str, values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    manifests = helm.Chart.load(CHARTS / chart).render(values, name="ks", namespace=namespace)
    return [
        doc
        for path, text in manifests.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.mark.parametrize(
    ("chart", "values"), [("model-serving", MODEL_SERVING), ("kubeserve", KUBESERVE)]
)
def test_chart_installs_server_side(cluster, restricted_namespace, chart, values):
    """The API server validates and admits every object (schema, defaulting, admission)."""
    release = cluster.install(
        helm.Chart.load(CHARTS / chart),
        "ks",
        values,
        namespace=restricted_namespace,
        dry_run="server",
    )
    assert "kind: Deployment" in release["manifest"]


@pytest.mark.parametrize(
    ("chart", "values"), [("model-serving", MODEL_SERVING), ("kubeserve", KUBESERVE)]
)
def test_every_pod_template_is_admitted_under_restricted(
    cluster, restricted_namespace, tmp_path, chart, values
):
    """Pod Security admission enforces on Pods, not on Deployments: wrap each pod template in a
    Pod and let the server admit it (dry run)."""
    pods = []
    for obj in rendered_objects(chart, values, restricted_namespace):
        template = None
        if obj["kind"] in {"Deployment", "Job"}:
            template = obj["spec"]["template"]
        if template is None:
            continue
        spec = copy.deepcopy(template["spec"])
        spec.pop("serviceAccountName", None)  # the ServiceAccounts are not created by a dry run
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"pss-{obj['metadata']['name']}"[:63],
                    "namespace": restricted_namespace,
                },
                "spec": spec,
            }
        )
    assert pods
    chart_dir = tmp_path / "pods"
    (chart_dir / "templates").mkdir(parents=True)
    (chart_dir / "Chart.yaml").write_text("apiVersion: v2\nname: pss-pods\nversion: 0.1.0\n")
    (chart_dir / "templates" / "pods.yaml").write_text(yaml.safe_dump_all(pods))
    cluster.install(
        helm.Chart.load(chart_dir), "pss", namespace=restricted_namespace, dry_run="server"
    )
