"""How the kubernetes backend reads its failures: which are worth retrying as they are (a
cluster or Helm hiccup, an object store that is away) and which need a person (a missing RBAC
right, an invalid object)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from kubeserve_common.errors import KubeServeError, PermanentError, TransientError
from kubeserve_common.storage import ArtifactNotFound, StorageError

from kubeserve_deployer.backends.kubernetes.cluster import ClusterError
from kubeserve_deployer.backends.kubernetes.helm import HelmError

log = logging.getLogger(__name__)

# What one reconcile step of a release may raise and report, rather than crash the pass.
BACKEND_ERRORS = (HelmError, ClusterError, KubeServeError)


def is_transient(exc: Exception) -> bool:
    """Worth retrying as is: a cluster or helm hiccup, an object store that is away."""
    if isinstance(exc, HelmError | ClusterError):
        return exc.transient
    return isinstance(exc, StorageError | TransientError) and not isinstance(exc, ArtifactNotFound)


@contextlib.contextmanager
def classified(what: str) -> Iterator[None]:
    """Cluster errors as the consumer runner reads them: transient ones are retried, permanent
    ones dead-lettered."""
    try:
        yield
    except ClusterError as exc:
        log.warning("%s failed", what, extra={"error": str(exc)[:500]})
        if exc.transient:
            raise TransientError(f"{what}: {exc}") from exc
        raise PermanentError(f"{what}: {exc}") from exc
