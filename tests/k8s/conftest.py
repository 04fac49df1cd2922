"""The `k8s` suite: end-to-end checks against a real cluster running the platform chart.

Every test here is marked `k8s` and skipped, with the reason, unless KUBECONFIG points at a
cluster. By default the platform is assumed installed as docs/kubernetes.md describes; with
KUBESERVE_E2E_INSTALL=1 the suite installs charts/kubeserve itself (helm-python-sdk) from the
values file in KUBESERVE_E2E_VALUES into KUBESERVE_E2E_PLATFORM_NAMESPACE.

Knobs (environment): KUBESERVE_E2E_URL (the gateway through the ingress, default
http://kubeserve.localtest.me), KUBESERVE_E2E_PROBE_IMAGE (an image with python for the
isolation probe, default the runtime image kubeserve/runtime-base:0.1.0),
KUBESERVE_E2E_OBJECT_STORE (host:port tenant pods may reach, default
minio.minio.svc.cluster.local:9000), KUBESERVE_E2E_TIMEOUT (seconds per wait, default 600).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.k8s)
            if not os.environ.get("KUBECONFIG"):
                item.add_marker(
                    pytest.mark.skip(reason="KUBECONFIG is not set: no cluster for the k8s suite")
                )


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return env("KUBESERVE_E2E_URL", "http://kubeserve.localtest.me").rstrip("/")


@pytest.fixture(scope="session")
def budget() -> float:
    return float(env("KUBESERVE_E2E_TIMEOUT", "600"))


@pytest.fixture(scope="session")
def platform(gateway_url: str) -> Iterator[None]:
    """The platform chart, installed by the suite when asked to (else assumed installed)."""
    if env("KUBESERVE_E2E_INSTALL", "0") != "1":
        yield
        return
    helm = pytest.importorskip("helm_python")
    import yaml

    values_file = os.environ.get("KUBESERVE_E2E_VALUES")
    if not values_file:
        pytest.fail("KUBESERVE_E2E_INSTALL=1 needs KUBESERVE_E2E_VALUES (a values file)")
    namespace = env("KUBESERVE_E2E_PLATFORM_NAMESPACE", "kubeserve")
    config = helm.Config(
        kubeconfig_path=os.environ["KUBECONFIG"], namespace=namespace, storage_driver="secret"
    )
    values = yaml.safe_load(Path(values_file).read_text())
    config.install(
        helm.Chart.load(REPO / "charts" / "kubeserve"),
        "kubeserve",
        namespace=namespace,
        values=values,
        wait="watcher",
        timeout=900,
    )
    yield


@pytest.fixture
async def kube() -> AsyncIterator[Any]:
    """An admin kubernetes-asyncio ApiClient from KUBECONFIG (the test's eyes, not the
    deployer's rights)."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=os.environ["KUBECONFIG"], client_configuration=configuration
    )
    api = client.ApiClient(configuration=configuration)
    yield api
    await api.close()
