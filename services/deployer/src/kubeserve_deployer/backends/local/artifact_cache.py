"""Local cache of model artifacts for the local backend: bytes copied from the artifact store
into `{runtime_dir}/cache/{sha256}/{filename}`, checked against the version's sha256, and the
version's wheelhouse unpacked into `{runtime_dir}/cache/wheelhouse-{hash}/site/`.

Bytes only: the deployer never opens a model; the runtime process loads the cached file.
Cached files are read-only (0444, directories 0555) and sandboxed replicas see them through a
read-only bind; still, every replica start re-hashes a cache hit against the registry's sha256
(a file changed behind our back - by a replica in the insecure mode, or on disk - is fetched
again, and the caller records it in the deployment's activity).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.errors import PermanentError
from kubeserve_common.storage import ArtifactNotFound, ArtifactStore
from kubeserve_common.wheels import WheelRefused, install_wheels

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ArtifactUnusable(PermanentError):
    """The artifact is missing, foreign to this store or corrupt: retrying will not help."""


@dataclass(frozen=True)
class CachedArtifact:
    path: Path
    hit: bool
    # Why a cached copy was thrown away and fetched again (its hash did not match), else None.
    refetched: str | None = None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o755)  # noqa: S103 - writable again for us only
    with contextlib.suppress(OSError):
        path.unlink()


class FetchFailed(Exception):
    """The store is down or slow: retried with backoff, never counted against the model."""


class ArtifactCache:
    def __init__(self, store: ArtifactStore, root: Path, *, timeout: float) -> None:
        self.store = store
        self.root = root
        self.timeout = timeout

    def _path(self, uri: str, sha256: str | None, filename: str | None) -> Path:
        digest = sha256 or hashlib.sha256(uri.encode()).hexdigest()
        name = _SAFE_NAME.sub("_", filename or uri.rsplit("/", 1)[-1]).lstrip(".") or "model"
        return self.root / digest / name

    async def fetch(self, uri: str, sha256: str | None, filename: str | None) -> CachedArtifact:
        """The cached file of `uri`: a hit whose sha256 matches the version's, else fetched."""
        path = self._path(uri, sha256, filename)
        refetched = None
        if await asyncio.to_thread(path.is_file):
            if not sha256:
                return CachedArtifact(path, True)
            actual = await asyncio.to_thread(_sha256_of, path)
            if actual == sha256:
                return CachedArtifact(path, True)
            refetched = (
                f"cached artifact {path.name} had sha256 {actual[:12]}..., the registry records "
                f"{sha256[:12]}...: discarded and fetched again"
            )
            await asyncio.to_thread(_discard, path)
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
        return CachedArtifact(path, False, refetched)

    async def fetch_version(
        self, uri: str, sha256: str | None, filename: str | None, wheelhouse_uri: str | None
    ) -> tuple[CachedArtifact, Path | None]:
        """A version's artifact and (when it has one) unpacked wheelhouse. `ArtifactUnusable`
        when retrying cannot help, `FetchFailed` when it may."""
        try:
            cached = await self.fetch(uri, sha256, filename)
        except ArtifactUnusable:
            raise
        except Exception as exc:
            raise FetchFailed(f"artifact fetch failed: {type(exc).__name__}: {exc}") from exc
        if not wheelhouse_uri:
            return cached, None
        try:
            return cached, await self.fetch_wheelhouse(wheelhouse_uri)
        except ArtifactUnusable:
            raise
        except Exception as exc:
            raise FetchFailed(f"wheelhouse fetch failed: {type(exc).__name__}: {exc}") from exc

    async def fetch_wheelhouse(self, uri: str) -> Path:
        """The version's wheels (the packages the runtime lacks, fetched by the builder),
        installed into a directory to put first on the runtime's import path
        (`kubeserve_common.wheels`: files copied, no package code run, nothing imported here)."""
        site = self.root / f"wheelhouse-{hashlib.sha256(uri.encode()).hexdigest()[:32]}" / "site"
        if await asyncio.to_thread((site / ".complete").is_file):
            return site
        try:
            # The URI names a folder; keys cannot end in "/", so resolve a child and cut it off.
            prefix = self.store.key_for(uri.rstrip("/") + "/x")[:-1]
        except ValueError as exc:
            raise ArtifactUnusable(f"wheelhouse {uri} is not in the configured store") from exc
        wheels = [o for o in await self.store.list_objects(prefix) if o.key.endswith(".whl")]
        staging = site.parent / f".{uuid.uuid4().hex}"
        try:
            files = []
            for wheel in wheels:
                local = staging / "wheels" / _SAFE_NAME.sub("_", wheel.key.rsplit("/", 1)[-1])
                await asyncio.to_thread(local.parent.mkdir, parents=True, exist_ok=True)
                await asyncio.wait_for(self._download(wheel.key, local, None), self.timeout)
                files.append(local)
            try:
                await asyncio.to_thread(
                    install_wheels, files, staging / "site", by="kubeserve-deployer"
                )
            except WheelRefused as exc:
                raise ArtifactUnusable(f"wheelhouse {uri}: {exc}") from None
            await asyncio.to_thread((staging / "site").mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread((staging / "site" / ".complete").write_text, uri)
            if not await asyncio.to_thread(site.exists):
                await asyncio.to_thread(os.replace, staging / "site", site)
                await asyncio.to_thread(_make_read_only, site)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        return site

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
        await asyncio.to_thread(os.chmod, tmp, 0o444)
        await asyncio.to_thread(os.chmod, path.parent, 0o755)
        # Atomic: a concurrent reader sees either no file or the whole verified file.
        await asyncio.to_thread(os.replace, tmp, path)
        await asyncio.to_thread(os.chmod, path.parent, 0o555)


def _make_read_only(root: Path) -> None:
    """Files 0444, directories 0555: read by every replica uid, written by none."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in files:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(directory, name), 0o444, follow_symlinks=False)
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(directory, name), 0o555)  # noqa: S103 - replica uids read
    os.chmod(root, 0o555)  # noqa: S103 - every replica uid reads, none writes
