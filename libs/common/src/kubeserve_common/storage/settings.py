"""Settings of every process that touches artifacts (registry, builder, deployer).

`artifact_store_url` is `file:///path` (the embedded mode; empty means `{home}/artifacts`) or
`s3://bucket[/prefix]`, with `s3_endpoint_url` for MinIO / moto and credentials as secrets (left
unset, boto's default chain applies: environment, IRSA, instance profile).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from kubeserve_common.settings import CommonSettings

MIB = 1024 * 1024


class ArtifactStoreSettings(CommonSettings):
    artifact_store_url: str = Field(
        default="", description="file:///dir or s3://bucket[/prefix]; empty: {home}/artifacts."
    )
    s3_endpoint_url: str | None = Field(default=None, description="MinIO, moto or another S3.")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: str = Field(default="path", pattern="^(path|virtual|auto)$")
    s3_connect_timeout: float = Field(default=5.0, gt=0)
    s3_read_timeout: float = Field(default=60.0, gt=0)
    s3_max_attempts: int = Field(default=3, ge=1, le=10)
    s3_part_size: int = Field(
        default=8 * MIB, ge=5 * MIB, le=512 * MIB, description="Multipart part size (S3 min 5 MiB)."
    )
    s3_upload_concurrency: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Parts uploading while the next one fills: memory ~ size x (this + 1). One "
        "already overlaps receiving with sending; more helps only against high-latency S3.",
    )
    presign_ttl_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)

    def resolved_artifact_store_url(self) -> str:
        return self.artifact_store_url or (self.home / "artifacts").resolve().as_uri()
