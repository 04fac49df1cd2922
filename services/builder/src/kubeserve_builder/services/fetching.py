"""Step 1, fetch: stream the artifact from the store to a file, checking size and sha256
against what the upload recorded."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubeserve_common.events.catalog import VersionUploaded
from kubeserve_common.storage import ArtifactNotFound, ArtifactStore, StorageError

from kubeserve_builder.domain.models import BuildFailure, Stage, StepRecord, TransientBuildError

MIB = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    base = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).strip("._") or "model.bin"
    return base[:100]


def chunks_of(path: Path, size: int = MIB) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        with path.open("rb") as fh:
            while data := await asyncio.to_thread(fh.read, size):
                yield data

    return gen()


async def fetch_artifact(
    store: ArtifactStore, payload: VersionUploaded, work: Path, rec: StepRecord, limit: int
) -> Path:
    """The artifact as a file under `work`; `BuildFailure(fetch)` when it is not the upload."""
    key = store.key_for(payload.artifact_uri)
    if payload.size > limit:
        raise BuildFailure(
            Stage.FETCH, f"the artifact has {payload.size} bytes; the limit is {limit}"
        )
    try:
        _, chunks = await store.open(key)
    except ArtifactNotFound:
        raise BuildFailure(Stage.FETCH, f"the artifact {key} does not exist") from None
    except StorageError as exc:
        raise TransientBuildError(str(exc)) from exc
    target = work / "model" / safe_filename(payload.filename)
    target.parent.mkdir()
    digest = hashlib.sha256()
    received = 0
    try:
        with target.open("wb") as fh:
            async for chunk in chunks:
                received += len(chunk)
                if received > payload.size:
                    raise BuildFailure(
                        Stage.FETCH,
                        f"size mismatch: the store holds more than the {payload.size} bytes "
                        "the upload recorded",
                    )
                # Hashing and writing off the event loop (2 GiB is seconds of CPU).
                await asyncio.to_thread(_hash_and_write, digest, fh, chunk)
    except StorageError as exc:
        raise TransientBuildError(str(exc)) from exc
    sha = digest.hexdigest()
    rec.details.update(key=key, size=received, sha256=sha)
    if received != payload.size:
        raise BuildFailure(
            Stage.FETCH,
            f"size mismatch: the upload recorded {payload.size} bytes, the store holds {received}",
        )
    if sha != payload.sha256:
        raise BuildFailure(
            Stage.FETCH,
            f"sha256 mismatch: the upload recorded {payload.sha256}, the stored bytes hash "
            f"to {sha}; the artifact changed after upload",
        )
    return target


def _hash_and_write(digest: Any, fh: Any, chunk: bytes) -> None:
    digest.update(chunk)
    fh.write(chunk)
