"""What a runtime pod may download: its own version's files, through presigned GET URLs.

Runtime pods execute tenant code, so they hold no object-store credentials at all. For each
deployment the deployer keeps one Secret, `kubeserve-{id}-artifacts`, in the tenant's namespace
with one manifest per live revision (key `r{N}.json`: the target and, during a rollout, the
revision still serving). A pod mounts only its own revision's key (charts/model-serving
`artifacts`), and images/base's start.sh downloads the files it lists
(`python -m kubeserve_runtime.presigned`). A URL grants GET on one object until it expires; the
backend signs the manifests again when half of their validity is left, and the kubelet updates
the mounted file, so a pod restarting days later still finds valid URLs.

Why presigned URLs (and not an artifact endpoint with a deployment token, or per-tenant
credentials): they need nothing on the network path but the object store itself (which the
tenant NetworkPolicies already allow), they work with any S3 API (MinIO, AWS) without an IAM
user per tenant, and the only secret a pod sees is scoped to its version and expires.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kubeserve_common.errors import PermanentError
from kubeserve_common.storage import ArtifactStore

from kubeserve_deployer.backends.kubernetes.release import artifacts_secret_name, manifest_key
from kubeserve_deployer.backends.kubernetes.tenancy import MANAGED_BY, TENANT_LABEL
from kubeserve_deployer.domain.deployments import DeploymentSpec, RevisionTarget

MANIFEST_FORMAT = 1
DEPLOYMENT_LABEL = "kubeserve.io/deployment-id"
# What start.sh needs from a version's folder; the build report and anything else stay private.
REQUIREMENTS = "requirements.txt"
WHEELHOUSE = "wheelhouse/"
# A Secret holds at most 1 MiB; keep well below it (a URL is ~1 KiB, a wheelhouse tens of files).
MAX_SECRET_BYTES = 512 * 1024


class ArtifactsUnavailable(PermanentError):
    code = "artifacts_unavailable"


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the version's folder: model.joblib, wheelhouse/x.whl
    key: str
    size: int
    sha256: str | None = None


def pick_files(
    target: RevisionTarget, prefix: str, keys: dict[str, int], model_key: str
) -> list[ManifestEntry]:
    """The files of the version a runtime needs, from the listing of its folder: the model,
    requirements.txt and the wheelhouse. Pure, so it is tested without a store."""
    if model_key not in keys:
        raise ArtifactsUnavailable(
            f"the artifact of version {target.version_tag} ({target.artifact_uri}) is missing "
            "from the object store"
        )
    wanted = [model_key]
    wanted += sorted(
        k
        for k in keys
        if k != model_key and (k == prefix + REQUIREMENTS or k.startswith(prefix + WHEELHOUSE))
    )
    return [
        ManifestEntry(
            path=k[len(prefix) :] if k.startswith(prefix) else k.rsplit("/", 1)[-1],
            key=k,
            size=keys[k],
            sha256=target.sha256 if k == model_key else None,
        )
        for k in wanted
    ]


class ArtifactAccess:
    """Builds the artifacts Secret of a deployment. `store` lists the version's folder (the
    deployer's own view of the store); `signer` signs for the endpoint the pods reach (the same
    store, or the same bucket under the in-cluster host name)."""

    def __init__(
        self,
        store: ArtifactStore,
        signer: ArtifactStore,
        *,
        ttl_seconds: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.signer = signer
        self.ttl_seconds = ttl_seconds
        self.wall = wall
        self._listings: dict[UUID, list[ManifestEntry]] = {}  # versions are immutable

    async def files(self, target: RevisionTarget) -> list[ManifestEntry]:
        cached = self._listings.get(target.version_id)
        if cached is not None:
            return cached
        try:
            model_key = self.store.key_for(target.artifact_uri)
        except ValueError as exc:
            raise ArtifactsUnavailable(
                f"the artifact URI {target.artifact_uri!r} is not in the platform's store"
            ) from exc
        # The version's folder (models/{user}/{model}/{tag}/), where the builder put the
        # wheelhouse next to the model.
        prefix = model_key.rsplit("/", 1)[0] + "/" if "/" in model_key else ""
        if prefix:
            listing = {o.key: o.size for o in await self.store.list_objects(prefix)}
        else:  # an object at the bucket's root: never list the whole bucket
            info = await self.store.stat(model_key)
            listing = {model_key: info.size} if info is not None else {}
        entries = pick_files(target, prefix, listing, model_key)
        self._listings[target.version_id] = entries
        return entries

    async def manifest(self, target: RevisionTarget) -> dict[str, Any]:
        expires = int(self.wall()) + self.ttl_seconds
        files = []
        for entry in await self.files(target):
            url = await self.signer.presigned_url(entry.key, expires_in=self.ttl_seconds)
            if url is None:
                raise ArtifactsUnavailable(
                    "the kubernetes backend needs an S3 artifact store (it presigns URLs)"
                )
            files.append(
                {"path": entry.path, "url": url, "size": entry.size, "sha256": entry.sha256}
            )
        return {
            "format": MANIFEST_FORMAT,
            "version": target.version_tag,
            "expires_at": expires,
            "files": files,
        }

    async def secret(self, spec: DeploymentSpec, namespace: str) -> dict[str, Any]:
        """The Secret with a manifest for the target and, while it may still serve, the fallback
        revision (its pods restart on its own files during a rollout)."""
        targets = [spec.target] + ([spec.fallback] if spec.fallback is not None else [])
        data: dict[str, str] = {}
        for target in targets:
            body = json.dumps(await self.manifest(target), sort_keys=True).encode()
            data[manifest_key(target.revision)] = base64.b64encode(body).decode()
        size = sum(len(v) for v in data.values())
        if size > MAX_SECRET_BYTES:
            raise ArtifactsUnavailable(
                f"the version's files need {size} bytes of presigned URLs, more than a "
                f"Secret may hold ({MAX_SECRET_BYTES}): too many wheels"
            )
        tenant = str(spec.owner_id).lower()
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": artifacts_secret_name(spec.deployment_id),
                "namespace": namespace,
                "labels": {
                    **MANAGED_BY,
                    TENANT_LABEL: tenant,
                    DEPLOYMENT_LABEL: str(spec.deployment_id).lower(),
                    "app.kubernetes.io/component": "model-artifacts",
                },
            },
            "type": "Opaque",
            # `data`, not `stringData`: server-side apply then owns each key, so a revision
            # dropped from the manifests is removed from the Secret.
            "data": data,
        }


def revisions_of(spec: DeploymentSpec) -> frozenset[tuple[int, UUID]]:
    """What the Secret must cover: (revision, version) of the target and the fallback."""
    out = {(spec.target.revision, spec.target.version_id)}
    if spec.fallback is not None:
        out.add((spec.fallback.revision, spec.fallback.version_id))
    return frozenset(out)
