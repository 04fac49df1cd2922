"""Local cache of model artifacts for the local backend: bytes copied from the artifact store
into `{runtime_dir}/cache/{sha256}/{filename}`, checked against the version's sha256.

Bytes only: the deployer never opens a model; the runtime process loads the cached file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from pathlib import Path

from kubeserve_common.errors import PermanentError
from kubeserve_common.storage import ArtifactNotFound, ArtifactStore

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ArtifactUnusable(PermanentError):
    """The artifact is missing, foreign to this store or corrupt: retrying will not help."""


class ArtifactCache:
    def __init__(self, store: ArtifactStore, root: Path, *, timeout: float) -> None:
        self.store = store
        self.root = root
        self.timeout = timeout

    def _path(self, uri: str, sha256: str | None, filename: str | None) -> Path:
        digest = sha256 or hashlib.sha256(uri.encode()).hexdigest()
        name = _SAFE_NAME.sub("_", filename or uri.rsplit("/", 1)[-1]).lstrip(".") or "model"
        return self.root / digest / name

    async def fetch(self, uri: str, sha256: str | None, filename: str | None) -> tuple[Path, bool]:
        """The cached file of `uri` (fetched when missing) and whether it was a cache hit."""
        path = self._path(uri, sha256, filename)
        if await asyncio.to_thread(path.is_file):
            return path, True
        try:
            key = self.store.key_for(uri)
        except ValueError as exc:
            raise ArtifactUnusable(f"artifact {uri} is not in the configured store") from exc
        try:
            await asyncio.wait_for(self._download(key, path, sha256), self.timeout)
        except ArtifactNotFound as exc:
            raise ArtifactUnusable(f"artifact {uri} does not exist") from exc
        except TimeoutError as exc:
            raise TimeoutError(f"fetching {uri} took longer than {self.timeout}s") from exc
        return path, False

    async def _download(self, key: str, path: Path, sha256: str | None) -> None:
        tmp_dir = self.root / ".tmp"
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        _, chunks = await self.store.open(key)
        fh = await asyncio.to_thread(open, tmp, "xb")
        try:
            async for chunk in chunks:
                digest.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(fh.flush)
        except BaseException:
            fh.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fh.close()
        if sha256 and digest.hexdigest() != sha256:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ArtifactUnusable(
                f"artifact {key} has sha256 {digest.hexdigest()}, the version says {sha256}"
            )
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # Atomic: a concurrent reader sees either no file or the whole verified file.
        await asyncio.to_thread(os.replace, tmp, path)
