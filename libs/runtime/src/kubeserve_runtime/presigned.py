"""Download a version's files from a manifest of presigned URLs - how a runtime pod on the
kubernetes backend gets its artifact without any object-store credentials.

The deployer writes the manifest (its artifacts Secret, mounted read-only by the pod):
`{"format": 1, "version": "v3", "expires_at": <unix time>, "files": [{"path":
"model.joblib", "url": "https://...", "size": 1234, "sha256": "..."|null}, ...]}`; paths are
relative to the version's folder (`requirements.txt`, `wheelhouse/x.whl`). Every file is
streamed to a temporary name, checked against its declared size (and sha256 when given), then
renamed into place, so a half-downloaded or substituted file is never loaded.

    python -m kubeserve_runtime.presigned MANIFEST DEST_DIR

Standard library only: the runtime image needs nothing else for this.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = 1
CHUNK = 1024 * 1024
ATTEMPTS = 3


class ManifestError(Exception):
    """The manifest is unusable or a file could not be fetched as declared."""


def _relative(path: Any) -> PurePosixPath:
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise ManifestError(f"invalid file path {path!r} in the manifest")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(p in ("", ".", "..") for p in pure.parts):
        raise ManifestError(f"file path {path!r} leaves the model directory")
    return pure


def read_manifest(path: Path, *, now: float | None = None) -> list[dict[str, Any]]:
    """The files of a manifest, validated; refuses one whose URLs already expired."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the artifact manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} is not an artifact manifest of format {FORMAT}")
    expires = manifest.get("expires_at")
    if isinstance(expires, int | float) and expires <= (time.time() if now is None else now):
        raise ManifestError(
            f"the manifest's URLs expired at {int(expires)}; the deployer signs them again and "
            "the kubelet updates the mounted file: the next container start will have them"
        )
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise ManifestError(f"{path} lists no files")
    checked = []
    for entry in files:
        if not isinstance(entry, dict):
            raise ManifestError("a manifest entry is not an object")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ManifestError(f"entry {entry.get('path')!r} has no http(s) URL")
        size = entry.get("size")
        if not isinstance(size, int) or size < 0:
            raise ManifestError(f"entry {entry.get('path')!r} has no size")
        sha = entry.get("sha256")
        if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
            raise ManifestError(f"entry {entry.get('path')!r} has an invalid sha256")
        checked.append(
            {"path": _relative(entry.get("path")), "url": url, "size": size, "sha256": sha}
        )
    return checked


def _download(url: str, target: Path, size: int, sha256: str | None, timeout: float) -> None:
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s) checked above
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,  # noqa: S310
            open(part, "wb") as out,
        ):
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > size:
                    raise ManifestError(f"{target.name}: more bytes than the {size} declared")
                digest.update(chunk)
                out.write(chunk)
        if received != size:
            raise ManifestError(f"{target.name}: {received} bytes received, {size} declared")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ManifestError(f"{target.name}: sha256 mismatch (not the artifact recorded)")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)


def fetch(manifest: Path, dest: Path, *, timeout: float = 60.0) -> list[Path]:
    """Download every file of `manifest` under `dest`; returns their paths."""
    files = read_manifest(manifest)
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for entry in files:
        target = dest.joinpath(*entry["path"].parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _download(entry["url"], target, entry["size"], entry["sha256"], timeout)
                break
            except urllib.error.HTTPError as exc:
                # 403: expired or not ours; 404: gone. Retrying cannot fix either.
                raise ManifestError(f"{entry['path']}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                if attempt == ATTEMPTS:
                    raise ManifestError(f"{entry['path']}: {exc}") from exc
                time.sleep(attempt)
        done.append(target)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m kubeserve_runtime.presigned MANIFEST DEST_DIR", file=sys.stderr)
        return 2
    try:
        paths = fetch(Path(args[0]), Path(args[1]))
    except ManifestError as exc:
        print(f"presigned: {exc}", file=sys.stderr)
        return 1
    print(f"presigned: fetched {len(paths)} file(s) into {args[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
