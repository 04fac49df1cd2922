"""Artifact storage: one port (`ArtifactStore`) with an S3 adapter (distributed mode) and a
local-directory adapter (embedded mode). The registry writes artifacts; builder and deployer read
them through the same port."""

from kubeserve_common.storage.base import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactTooLarge,
    ObjectInfo,
    StorageError,
    StoredObject,
    model_prefix,
    staging_key,
    validate_key,
    version_prefix,
)
from kubeserve_common.storage.factory import create_artifact_store
from kubeserve_common.storage.settings import ArtifactStoreSettings

__all__ = [
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactStoreSettings",
    "ArtifactTooLarge",
    "ObjectInfo",
    "StorageError",
    "StoredObject",
    "create_artifact_store",
    "model_prefix",
    "staging_key",
    "validate_key",
    "version_prefix",
]
