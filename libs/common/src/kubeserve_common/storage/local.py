"""Local-directory artifact store for the embedded mode.

Writes go to a temporary file in `{root}/.tmp`, are fsynced and then renamed into place, so a
reader never sees a partial file and a crash leaves at most a temporary file (swept by
`sweep_stale()`). File I/O runs on worker threads so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from kubeserve_common.storage.base import (
    STAGING_ROOT,
    ArtifactNotFound,
    ArtifactStore,
    ObjectInfo,
    validate_key,
)

log = logging.getLogger(__name__)

_WRITE_BUFFER = 1024 * 1024
_TMP = ".tmp"


class LocalArtifactStore(ArtifactStore):
    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._ready = False

    # -- paths ---------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} escapes the store root")
        return path

    def uri_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def key_for(self, uri: str) -> str:
        prefix = self.root.as_uri() + "/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri!r} is not in this store")
        return validate_key(uri[len(prefix) :])

    # -- writes --------------------------------------------------------------------------------
    async def ensure_bucket(self) -> None:
        if self._ready:
            return
        await asyncio.to_thread((self.root / _TMP).mkdir, parents=True, exist_ok=True)
        self._ready = True
        removed = await self.sweep_stale()
        if removed:
            log.info("removed stale temporary and staged files", extra={"files": removed})

    async def _write(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> str:
        final = self._path(key)
        await self.ensure_bucket()
        tmp = self.root / _TMP / f"{uuid.uuid4().hex}.part"
        buffer = bytearray()
        fh: BinaryIO = await asyncio.to_thread(open, tmp, "xb")
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(fh.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(fh.write, bytes(buffer))
            await asyncio.to_thread(_flush_and_sync, fh)
            await asyncio.to_thread(_install, tmp, final)
        except BaseException:
            # Shielded: a cancelled request must still not leave its temporary file behind.
            await asyncio.shield(asyncio.to_thread(_discard, fh, tmp))
            raise
        else:
            await asyncio.to_thread(fh.close)
        return final.as_uri()

    async def move(self, src: str, dst: str) -> str:
        source, target = self._path(src), self._path(dst)
        if not await asyncio.to_thread(source.is_file):
            raise ArtifactNotFound(f"no object {src}")
        await asyncio.to_thread(_install, source, target)
        await asyncio.to_thread(_prune_empty_dirs, source.parent, self.root)
        return target.as_uri()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(_unlink, path)
        await asyncio.to_thread(_prune_empty_dirs, path.parent, self.root)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise ValueError("a prefix must end with '/'")
        directory = self._path(prefix.rstrip("/"))

        def remove() -> int:
            if not directory.is_dir():
                return 0
            count = sum(1 for p in directory.rglob("*") if p.is_file())
            shutil.rmtree(directory, ignore_errors=True)
            _prune_empty_dirs(directory.parent, self.root)
            return count

        return await asyncio.to_thread(remove)

    async def sweep_stale(
        self, *, temporaries_older_than: float = 3600.0, staged_older_than: float = 86400.0
    ) -> int:
        """Remove what a crashed process left: temporary files of interrupted writes and staged
        uploads that never became a version (the S3 adapter uses lifecycle rules instead).
        Runs once per process when the store is first used; the ages keep live writes safe."""

        def sweep() -> int:
            now = time.time()
            removed = 0
            candidates = [
                (self.root / _TMP, "*.part", temporaries_older_than),
                (self.root / STAGING_ROOT.rstrip("/"), "*", staged_older_than),
            ]
            for directory, pattern, age in candidates:
                if not directory.is_dir():
                    continue
                for path in list(directory.rglob(pattern)):
                    with contextlib.suppress(OSError):
                        if path.is_file() and now - path.stat().st_mtime > age:
                            path.unlink()
                            removed += 1
                            if directory.name != _TMP:
                                _prune_empty_dirs(path.parent, self.root)
            return removed

        return await asyncio.to_thread(sweep)

    # -- reads ---------------------------------------------------------------------------------
    async def open(
        self, key: str, *, chunk_size: int = 1024 * 1024
    ) -> tuple[int, AsyncIterator[bytes]]:
        path = self._path(key)
        try:
            fh: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactNotFound(f"no object {key}") from None
        size = os.fstat(fh.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while data := await asyncio.to_thread(fh.read, chunk_size):
                    yield data
            finally:
                fh.close()

        return size, chunks()

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        def walk() -> list[ObjectInfo]:
            out = []
            for path in sorted(self.root.rglob("*")):
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and rel.startswith(prefix) and not rel.startswith(_TMP + "/"):
                    st = path.stat()
                    modified = datetime.fromtimestamp(st.st_mtime, UTC)
                    out.append(ObjectInfo(rel, st.st_size, modified))
            return out

        if not await asyncio.to_thread(self.root.is_dir):
            return []
        return await asyncio.to_thread(walk)

    async def check(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")


def _flush_and_sync(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _install(tmp: Path, final: Path) -> None:
    """Atomic rename into place, then fsync the directory so the rename itself is durable."""
    for attempt in range(5):
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
            break
        except FileNotFoundError:
            # A concurrent delete pruned the fresh (empty) directory between mkdir and rename.
            if attempt == 4 or not tmp.exists():
                raise
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _discard(fh: BinaryIO, tmp: Path) -> None:
    with contextlib.suppress(OSError):
        fh.close()
    _unlink(tmp)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _prune_empty_dirs(directory: Path, root: Path) -> None:
    """Remove now-empty parent directories up to (not including) the root."""
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
