"""The artifact-store port: streaming writes that hash and count on the fly, streaming reads,
prefix deletes and moves. Keys are `/`-separated relative paths; adapters map them to S3 keys or
files under a root directory.

Layout (DESIGN.md section 2): `models/{user_id}/{model_id}/{version_tag}/{filename}` beside
`.../requirements.txt`. Uploads land first under `staging/` (their tag is only known when the
version row commits) and are moved into place inside the committing transaction.
"""

from __future__ import annotations

import abc
import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from kubeserve_common.errors import KubeServeError, NotFound, PayloadTooLarge

STAGING_ROOT = "staging/"
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StorageError(KubeServeError):
    """The object store failed or is unreachable (retryable from the caller's point of view)."""

    code, http_status = "storage_unavailable", 503


class ArtifactTooLarge(PayloadTooLarge):
    """A streamed write went over its `max_bytes`; nothing of it remains in the store."""


class ArtifactNotFound(NotFound):
    """No object under that key."""


@dataclass(frozen=True)
class StoredObject:
    """What a completed write produced: the sha256 and size are of the bytes actually stored."""

    key: str
    uri: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime | None = None


def validate_key(key: str) -> str:
    """Refuse keys that could escape a prefix or the local root (`..`, absolute, empty parts)."""
    parts = key.split("/")
    if not key or len(key) > 1024 or not all(_KEY_PART.match(p) for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


def model_prefix(user_id: UUID, model_id: UUID) -> str:
    return f"models/{user_id}/{model_id}/"


def version_prefix(user_id: UUID, model_id: UUID, version_tag: str) -> str:
    return f"{model_prefix(user_id, model_id)}{version_tag}/"


def staging_key(user_id: UUID, filename: str) -> str:
    """A fresh key for an upload whose version tag is not allocated yet."""
    return f"{STAGING_ROOT}{user_id}/{uuid.uuid4().hex}/{filename}"


class _Meter:
    """Counts and hashes the chunks of one write as they pass; `ArtifactTooLarge` once more
    than `max_bytes` went by."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    async def count(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise ArtifactTooLarge(f"artifact exceeds the limit of {self.max_bytes} bytes")
            self.digest.update(chunk)
            yield chunk


class ArtifactStore(abc.ABC):
    """Port for artifact bytes. Every method is bounded in time by the adapter's timeouts."""

    scheme: str

    @abc.abstractmethod
    async def ensure_bucket(self) -> None:
        """Create the bucket (or root directory) when it is missing; idempotent."""

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Store the chunks under `key`, computing size and sha256 while streaming.

        Memory stays bounded (one part at a time). Raises `ArtifactTooLarge` as soon as more than
        `max_bytes` arrived. On any failure - including the chunk iterator raising, e.g. a client
        that disconnected, or cancellation - nothing is left under `key` (or anywhere else).
        """
        meter = _Meter(max_bytes)
        uri = await self._write(key, meter.count(chunks), content_type=content_type)
        return StoredObject(key=key, uri=uri, size=meter.size, sha256=meter.digest.hexdigest())

    @abc.abstractmethod
    async def _write(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> str:
        """Store the chunks under `key` and return its URI; `put_stream`'s contract on failure
        (nothing left behind), the chunks already counted, hashed and limited."""

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, one(), content_type=content_type)

    @abc.abstractmethod
    async def open(
        self, key: str, *, chunk_size: int = 1024 * 1024
    ) -> tuple[int, AsyncIterator[bytes]]:
        """Size and a chunk iterator of the object; `ArtifactNotFound` when it is missing.

        The object is opened before returning, so a missing key fails before any response is
        started."""

    async def read_bytes(self, key: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        size, chunks = await self.open(key)
        if size > max_bytes:
            raise ArtifactTooLarge(f"object {key} is larger than {max_bytes} bytes")
        return b"".join([c async for c in chunks])

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None:
        """Size of the object, or None when it does not exist."""

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    @abc.abstractmethod
    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object under `prefix` (tests, cleanup sweeps)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (which must end with `/`); return how many."""

    @abc.abstractmethod
    async def move(self, src: str, dst: str) -> str:
        """Make the object at `src` available at `dst`, remove `src`, return the URI of `dst`
        (a server-side copy on S3, an atomic rename locally; the bytes never pass through us)."""

    async def presigned_url(self, key: str, *, expires_in: int = 300) -> str | None:
        """A short-lived GET URL, or None when the store cannot make one (local directory)."""
        return None

    @abc.abstractmethod
    def uri_for(self, key: str) -> str:
        """The stable URI recorded in the database and in events (`s3://bucket/key`, `file://`)."""

    @abc.abstractmethod
    def key_for(self, uri: str) -> str:
        """The key of a URI this store produced; ValueError for a foreign URI."""

    async def check(self) -> None:
        """Readiness probe: raise when the store is unusable."""
        await self.stat("healthcheck/none")

    async def close(self) -> None:  # noqa: B027 - most adapters hold nothing to release
        """Release connections."""
