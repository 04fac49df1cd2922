"""Builds the kubernetes backend from the deployer's settings (the composition root calls it;
tests pass fakes of the cluster ports)."""

from __future__ import annotations

from kubeserve_common.storage import ArtifactStore

from kubeserve_deployer.backends.kubernetes.artifacts import ArtifactAccess
from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
from kubeserve_deployer.backends.kubernetes.cluster import KubernetesAsyncioCluster, KubernetesPort
from kubeserve_deployer.backends.kubernetes.helm import HelmPort, Pyhelm3Helm
from kubeserve_deployer.backends.kubernetes.leader import LeaderElector
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings


def create_kubernetes_backend(
    config: KubernetesSettings,
    store: ArtifactStore,
    *,
    signer: ArtifactStore | None = None,
    helm: HelmPort | None = None,
    kube: KubernetesPort | None = None,
) -> KubernetesBackend:
    """`store` lists versions' files; `signer` (default: `store`) presigns their URLs for the
    endpoint the pods reach."""
    if store.scheme != "s3":
        raise ValueError(
            "the kubernetes backend needs an S3 artifact store (KUBESERVE_ARTIFACT_STORE_URL="
            "s3://...): runtime pods download their version through presigned URLs"
        )
    kube = kube or KubernetesAsyncioCluster(
        kubeconfig=config.kubeconfig, context=config.context, timeout=config.request_timeout
    )
    helm = helm or Pyhelm3Helm(
        config.chart_path,
        executable=config.helm_executable,
        timeout=config.helm_timeout,
        kubeconfig=config.kubeconfig,
        kubecontext=config.context,
    )
    artifacts = ArtifactAccess(store, signer or store, ttl_seconds=config.artifact_url_ttl_seconds)
    elector = LeaderElector(kube, config) if config.leader_election else None
    return KubernetesBackend(helm, kube, config, artifacts, elector=elector)
