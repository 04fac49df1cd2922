"""The kubernetes pod's download path: images/base's start.sh with a manifest of presigned URLs
(what the deployer's artifacts Secret holds) and no object-store credentials at all, against
moto's S3 server; and the fetcher's refusals (paths leaving the model directory, a body that is
not the one declared, expired URLs) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubeserve_common.testing.servers import free_port, wait_until_ready
from kubeserve_runtime.presigned import ManifestError, fetch, main, read_manifest

BASE = Path(__file__).resolve().parents[3] / "images" / "base"


def write_manifest(path: Path, files: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "version": "v2",
                "expires_at": time.time() + 3600,
                **extra,
                "files": files,
            }
        )
    )
    return path


def test_start_sh_downloads_its_version_through_presigned_urls_without_credentials(
    tmp_path: Path, make_wheel: Any, iris_pipeline: Any, s3_url: str, bucket: str
) -> None:
    import boto3
    import joblib
    from botocore.config import Config

    proc = None
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="platform",
            aws_secret_access_key="platform-secret",
            config=Config(signature_version="s3v4"),
        )
        s3.create_bucket(Bucket=bucket)
        joblib.dump(iris_pipeline, tmp_path / "model.joblib")
        wheel = make_wheel(tmp_path, "tinypkg", "1.0")
        prefix = "models/u1/m1/v2/"
        contents = {
            "model.joblib": (tmp_path / "model.joblib").read_bytes(),
            "requirements.txt": b"tinypkg==1.0\n",
            f"wheelhouse/{wheel.name}": wheel.read_bytes(),
        }
        files = []
        for path, body in contents.items():
            s3.put_object(Bucket=bucket, Key=prefix + path, Body=body)
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": prefix + path}, ExpiresIn=600
            )
            sha = hashlib.sha256(body).hexdigest() if path == "model.joblib" else None
            files.append({"path": path, "url": url, "size": len(body), "sha256": sha})
        manifest = write_manifest(tmp_path / "manifest.json", files)

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                # As the chart sets it: the s3:// URI names the version, the manifest wins.
                "KUBESERVE_MODEL_URI": f"s3://{bucket}/{prefix}",
                "KUBESERVE_ARTIFACT_MANIFEST": str(manifest),
                "PYTHON": sys.executable,
                "MODEL_DIR": str(tmp_path / "fetched"),
                "KUBESERVE_PACKAGES_DIR": str(tmp_path / "packages"),
                "KUBESERVE_MODEL_NAME": "iris",
                "KUBESERVE_HOST": "127.0.0.1",
                "KUBESERVE_PORT": str(port),
                # Nothing to sign with: any fallback to an S3 client would fail loudly.
                "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            }
        )
        env.pop("PYTHONPATH", None)
        proc = subprocess.Popen(
            ["sh", str(BASE / "start.sh"), "--log-level", "warning"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", proc)
        body = httpx.post(f"{url}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).json()
        assert body["predictions"] == [0]
        for path, expected in contents.items():
            assert (tmp_path / "fetched" / path).read_bytes() == expected
        assert (tmp_path / "packages" / "tinypkg" / "__init__.py").exists()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


# -- the fetcher's refusals ------------------------------------------------------------------------


@pytest.fixture
def http_files() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A plain HTTP server on 127.0.0.1 answering GET /<name> with the bytes set in the dict."""
    served: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_files_land_under_their_paths_and_are_checked(
    tmp_path: Path, http_files: tuple[str, dict[str, bytes]]
) -> None:
    base, served = http_files
    served.update({"m": b"model bytes", "w": b"wheel"})
    manifest = write_manifest(
        tmp_path / "m.json",
        [
            {
                "path": "model.joblib",
                "url": f"{base}/m",
                "size": 11,
                "sha256": hashlib.sha256(b"model bytes").hexdigest(),
            },
            {"path": "wheelhouse/x.whl", "url": f"{base}/w", "size": 5, "sha256": None},
        ],
    )
    dest = tmp_path / "out"
    assert fetch(manifest, dest) == [dest / "model.joblib", dest / "wheelhouse" / "x.whl"]
    assert (dest / "model.joblib").read_bytes() == b"model bytes"
    assert main([str(manifest), str(tmp_path / "again")]) == 0


@pytest.mark.parametrize(
    ("body", "size", "sha", "problem"),
    [
        (b"substituted!", 12, hashlib.sha256(b"the original").hexdigest(), "sha256 mismatch"),
        (b"longer than declared", 4, None, "more bytes than the 4 declared"),
        (b"short", 50, None, "5 bytes received, 50 declared"),
    ],
    ids=["other-bytes", "too-long", "too-short"],
)
def test_a_body_that_is_not_the_declared_one_leaves_nothing_behind(
    tmp_path: Path,
    http_files: tuple[str, dict[str, bytes]],
    body: bytes,
    size: int,
    sha: str | None,
    problem: str,
) -> None:
    base, served = http_files
    served["m"] = body
    manifest = write_manifest(
        tmp_path / "m.json",
        [{"path": "model.joblib", "url": f"{base}/m", "size": size, "sha256": sha}],
    )
    with pytest.raises(ManifestError, match=problem):
        fetch(manifest, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no partial or unchecked file
    assert main([str(manifest), str(tmp_path / "out")]) == 1


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a/../../b", "", "a\\b", "a/./../b"], ids=repr
)
def test_paths_leaving_the_model_directory_are_refused(tmp_path: Path, path: str) -> None:
    manifest = write_manifest(
        tmp_path / "m.json", [{"path": path, "url": "http://127.0.0.1:1/x", "size": 1}]
    )
    with pytest.raises(ManifestError, match="path"):
        read_manifest(manifest)


def test_unusable_manifests_are_refused_with_the_reason(
    tmp_path: Path, http_files: tuple[str, dict[str, bytes]]
) -> None:
    base, _ = http_files
    entry = {"path": "m", "url": f"{base}/missing", "size": 1}
    with pytest.raises(ManifestError, match="expired"):
        read_manifest(write_manifest(tmp_path / "a.json", [entry], expires_at=time.time() - 1))
    with pytest.raises(ManifestError, match="format"):
        read_manifest(write_manifest(tmp_path / "b.json", [entry], format=2))
    with pytest.raises(ManifestError, match="no http"):
        read_manifest(write_manifest(tmp_path / "c.json", [{**entry, "url": "file:///etc/passwd"}]))
    with pytest.raises(ManifestError, match="lists no files"):
        read_manifest(write_manifest(tmp_path / "d.json", []))
    (tmp_path / "e.json").write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path / "e.json")
    with pytest.raises(ManifestError, match="HTTP 404"):  # gone or not signed for: no retry
        fetch(write_manifest(tmp_path / "f.json", [entry]), tmp_path / "out")
