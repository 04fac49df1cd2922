"""Settings of the registry service (environment variables `KUBESERVE_*`).

Defaults suit the embedded mode: artifacts under `{home}/artifacts` (`file://`). The distributed
mode sets `KUBESERVE_ARTIFACT_STORE_URL=s3://bucket`, `KUBESERVE_S3_ENDPOINT_URL` and the S3
credentials (see `kubeserve_common.storage.settings`).
"""

from __future__ import annotations

from kubeserve_common.storage.settings import ArtifactStoreSettings
from pydantic import Field

GIB = 1024 * 1024 * 1024


class RegistrySettings(ArtifactStoreSettings):
    port: int = 8082
    max_artifact_bytes: int = Field(default=2 * GIB, ge=1, description="Largest model file.")
    max_requirements_bytes: int = Field(default=64 * 1024, ge=1, le=1024 * 1024)
    max_json_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Body limit of every route but the upload."
    )
    # Multipart framing (boundaries, part headers) around the two files of an upload.
    multipart_overhead_bytes: int = Field(default=64 * 1024, ge=1024)

    @property
    def max_upload_body_bytes(self) -> int:
        return self.max_artifact_bytes + self.max_requirements_bytes + self.multipart_overhead_bytes
