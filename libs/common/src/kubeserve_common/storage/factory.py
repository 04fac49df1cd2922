"""Pick the artifact-store adapter from the settings' URL scheme."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from kubeserve_common.storage.base import ArtifactStore
from kubeserve_common.storage.settings import ArtifactStoreSettings


def create_artifact_store(settings: ArtifactStoreSettings) -> ArtifactStore:
    url = settings.resolved_artifact_store_url()
    parts = urlsplit(url)
    if parts.scheme == "file":
        from kubeserve_common.storage.local import LocalArtifactStore

        return LocalArtifactStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from kubeserve_common.storage.s3 import S3ArtifactStore

        if not parts.netloc:
            raise ValueError(f"artifact_store_url {url!r} names no bucket")
        return S3ArtifactStore(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id.get_secret_value()
            if settings.s3_access_key_id
            else None,
            secret_access_key=settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None,
            addressing_style=settings.s3_addressing_style,
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            max_attempts=settings.s3_max_attempts,
            part_size=settings.s3_part_size,
            upload_concurrency=settings.s3_upload_concurrency,
        )
    raise ValueError(f"unsupported artifact_store_url scheme {parts.scheme!r} (file:// or s3://)")
