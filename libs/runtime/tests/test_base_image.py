"""images/base without Docker: the pins, the frozen package list, and start.sh end to end."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from kubeserve_common.testing.servers import free_port
from kubeserve_runtime.requirements import make_plan, parse_requirements, read_frozen
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BASE = Path(__file__).resolve().parents[3] / "images" / "base"
RUNTIME = Path(__file__).resolve().parents[1]


def test_frozen_list_holds_every_pin_and_the_runtime() -> None:
    frozen = read_frozen(BASE / "frozen-packages.txt")
    pins = parse_requirements((BASE / "requirements.txt").read_text())
    for req in pins:
        (spec,) = req.requirement.specifier
        assert spec.operator == "==", f"{req.name} is not an exact pin"
        assert frozen[req.name] == spec.version, req.name
    version = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]["version"]
    assert frozen["kubeserve-runtime"] == version


def test_runtime_dependencies_are_satisfied_by_the_image_and_never_common() -> None:
    frozen = read_frozen(BASE / "frozen-packages.txt")
    requires = [
        Requirement(r)
        for r in importlib.metadata.requires("kubeserve-runtime") or []
        if "extra ==" not in r
    ]
    names = {canonicalize_name(r.name) for r in requires}
    assert "kubeserve-common" not in names  # the runtime ships alone in the image
    plan = make_plan(parse_requirements("\n".join(str(r) for r in requires)), frozen)
    assert plan.to_install == [], plan.summary()


def _can_make_root_read_only() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@pytest.mark.parametrize("read_only_root", [False, True], ids=["writable", "read-only-root"])
def test_start_sh_installs_missing_packages_from_the_wheelhouse_and_serves(
    tmp_path, make_wheel, read_only_root
) -> None:
    """With read_only_root, everything but a tmpfs is read-only, as in the Kubernetes pod
    (readOnlyRootFilesystem + an emptyDir): the install and the server must cope."""
    if read_only_root and not _can_make_root_read_only():
        pytest.skip("needs root and unshare(1) to mount a read-only root in a namespace")
    # The model's class lives in a package the image lacks: loading it proves the package
    # was installed from the wheelhouse and put on the path before the server started.
    code = (
        "import numpy as np\n"
        "class Doubler:\n"
        "    n_features_in_ = 1\n"
        "    def predict(self, x):\n"
        "        return np.asarray(x, dtype=float)[:, 0] * 2\n"
    )
    src = tmp_path / "src"
    (src / "doublerpkg").mkdir(parents=True)
    (src / "doublerpkg" / "__init__.py").write_text(f"VERSION = '1.0'\n{code}")
    sys.path.insert(0, str(src))
    try:
        import doublerpkg

        blob = pickle.dumps(doublerpkg.Doubler())
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("doublerpkg", None)

    model_dir = tmp_path / "model"
    (model_dir / "wheelhouse").mkdir(parents=True)
    (model_dir / "model.pkl").write_bytes(blob)
    (model_dir / "requirements.txt").write_text("numpy\ndoublerpkg==1.0\n")
    make_wheel(model_dir / "wheelhouse", "doublerpkg", "1.0", code=code)

    port = free_port()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    packages = scratch / "packages"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "KUBESERVE_MODEL_URI": str(model_dir),
        "KUBESERVE_MODEL_NAME": "doubler",
        "KUBESERVE_HOST": "127.0.0.1",
        "KUBESERVE_PORT": str(port),
        "KUBESERVE_PACKAGES_DIR": str(packages),
        "TMPDIR": str(scratch),
        "HOME": str(scratch),
        "PIP_NO_CACHE_DIR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTHONPATH", None)
    command = ["sh", str(BASE / "start.sh"), "--log-level", "warning"]
    if read_only_root:
        # A private mount namespace: remount / read-only there, with a tmpfs as the only
        # writable place; every step execs, so the server is this process.
        setup = (
            "mount --make-rprivate / && mount -o remount,bind,ro / && "
            'mount -t tmpfs -o size=256m tmpfs "$SCRATCH" && exec "$@"'
        )
        env["SCRATCH"] = str(scratch)
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", setup, "sh", *command]
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "start.sh did not bring the runtime up"
            time.sleep(0.2)
        response = httpx.post(f"{url}/predict", json={"instances": [[3], [4.5]]}, timeout=10)
        assert response.json() == {"predictions": [6.0, 9.0]}
    finally:
        proc.terminate()
        proc.wait(30)
    log = proc.stdout.read().decode()
    assert "missing     doublerpkg==1.0" in log
    assert "installed: doublerpkg==1.0" in log
    if not read_only_root:  # (the tmpfs is gone with its namespace)
        assert (packages / "doublerpkg" / "__init__.py").exists()
        assert not list(packages.glob("numpy*"))  # the image's numpy satisfied the requirement
    else:
        assert not list(scratch.iterdir())  # nothing leaked out of the tmpfs


def test_start_sh_fetches_an_s3_artifact_with_its_wheelhouse(tmp_path, make_wheel, iris_pipeline):
    import boto3
    import joblib
    from moto.server import ThreadedMotoServer

    s3_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    server.start()
    proc = None
    try:
        endpoint = f"http://127.0.0.1:{s3_port}"
        creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="artifacts")
        joblib.dump(iris_pipeline, tmp_path / "model.joblib")
        wheel = make_wheel(tmp_path, "tinypkg", "1.0")
        prefix = "models/u1/m1/v2/"
        s3.upload_file(str(tmp_path / "model.joblib"), "artifacts", prefix + "model.joblib")
        s3.upload_file(str(wheel), "artifacts", prefix + "wheelhouse/" + wheel.name)
        s3.put_object(Bucket="artifacts", Key=prefix + "requirements.txt", Body=b"tinypkg==1.0\n")

        port = free_port()
        env = {
            **os.environ,
            **creds,
            "AWS_REGION": "us-east-1",
            "KUBESERVE_S3_ENDPOINT_URL": endpoint,
            "PYTHON": sys.executable,
            "KUBESERVE_MODEL_URI": f"s3://artifacts/{prefix}",
            "MODEL_DIR": str(tmp_path / "fetched"),
            "KUBESERVE_PACKAGES_DIR": str(tmp_path / "packages"),
            "KUBESERVE_MODEL_NAME": "iris",
            "KUBESERVE_HOST": "127.0.0.1",
            "KUBESERVE_PORT": str(port),
        }
        env.pop("PYTHONPATH", None)
        proc = subprocess.Popen(
            ["sh", str(BASE / "start.sh"), "--log-level", "warning"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "start.sh did not bring the runtime up"
            time.sleep(0.2)
        body = httpx.post(f"{url}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).json()
        assert body["predictions"] == [0]
        assert (tmp_path / "packages" / "tinypkg" / "__init__.py").exists()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        server.stop()
