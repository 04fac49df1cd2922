"""images/platform/Dockerfile and .dockerignore. No Docker engine runs here, so the images are
not built by these tests: they parse the Dockerfile into stages and check what each target
image gets (user, health check, entrypoint, no compilers, pinned and verified helm,
the builder's runtime), and run the Dockerfile's own `uv export` step against the real lock file."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images/platform/Dockerfile"
PLATFORM = {"gateway": 8080, "auth": 8081, "registry": 8082, "builder": 8083, "deployer": 8084}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def text(self) -> str:
        return "\n".join(f"{kw} {args}" for kw, args in self.instructions)


def parse(path: Path) -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARGs and the stages of a Dockerfile (continuation lines joined, comments out)."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, flags=re.I)
            assert m, line
            current = Stage(name=m.group(2) or f"stage{len(stages)}", base=m.group(1))
            stages[current.name] = current
        elif current is None:
            if keyword == "ARG":
                name, _, value = rest.partition("=")
                args[name] = value
        else:
            current.instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse(DOCKERFILE)


def lineage(stage: Stage) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [stage]
    while chain[-1].base in STAGES:
        chain.append(STAGES[chain[-1].base])
    return chain


def test_every_service_has_a_target_on_python_slim():
    assert set(PLATFORM) <= set(STAGES)
    assert ARGS["PYTHON_IMAGE"].startswith("python:3.11-slim")
    for name in PLATFORM:
        root = lineage(STAGES[name])[-1]
        assert root.base == "${PYTHON_IMAGE}", name


@pytest.mark.parametrize("service", list(PLATFORM))
def test_service_image_runs_as_uid_10001_with_healthcheck_and_entrypoint(service):
    stage = STAGES[service]
    users = stage.all("USER")
    assert users and users[-1] == "10001:10001"
    # Nothing after the last USER switches back to root.
    last_user = max(i for i, (kw, _) in enumerate(stage.instructions) if kw == "USER")
    assert all(kw != "USER" for kw, _ in stage.instructions[last_user + 1 :])
    (healthcheck,) = stage.all("HEALTHCHECK")
    assert "/opt/kubeserve/healthcheck.py" in healthcheck
    assert stage.all("ENTRYPOINT") == [f'["kubeserve-{service}"]']
    assert stage.all("CMD") == [f'["serve", "--host", "0.0.0.0", "--port", "{PLATFORM[service]}"]']
    assert stage.all("EXPOSE") == [str(PLATFORM[service])]
    assert f"KUBESERVE_HEALTHCHECK_PORT={PLATFORM[service]}" in " ".join(stage.all("ENV"))
    # The user exists in the shared base with that uid/gid.
    platform = STAGES["platform"].text()
    assert "--uid 10001" in platform and "--gid 10001" in platform
    # The service installs its own package from the locked wheels, offline.
    install = " ".join(stage.all("RUN"))
    assert "--mount=type=bind,from=wheels" in install
    assert "--no-index" in install and "-c /wheels/constraints.txt" in install
    assert f"kubeserve-{service}" in install


@pytest.mark.parametrize("service", list(PLATFORM))
def test_service_image_carries_its_migrations_where_the_code_looks(service):
    """`kubeserve-<svc> migrate` (the chart's hook Job) needs the Alembic revisions, which the
    wheels do not contain: each image copies them to the path bootstrap.MIGRATIONS names."""
    text = STAGES[service].text()
    assert f"source=services/{service}/migrations" in text
    assert f"from kubeserve_{service}.bootstrap import MIGRATIONS" in text
    assert (REPO / f"services/{service}/migrations/env.py").is_file()
    bootstrap = (REPO / f"services/{service}/src/kubeserve_{service}/bootstrap.py").read_text()
    assert re.search(r"^MIGRATIONS\b", bootstrap, flags=re.M)


def test_compilers_only_in_the_wheels_stage():
    for name, stage in STAGES.items():
        text = stage.text()
        has_compiler = re.search(r"\b(build-essential|gcc|g\+\+|clang)\b", text)
        if name == "wheels":
            assert has_compiler
        else:
            assert not has_compiler, f"stage {name} installs a compiler"
    # Final images inherit from `platform`, never from `wheels`.
    for service in PLATFORM:
        assert "wheels" not in [s.name for s in lineage(STAGES[service])]


def test_wheels_are_fetched_by_hash_from_the_lock_file():
    text = STAGES["wheels"].text()
    assert "uv export --frozen --no-dev --all-packages --no-emit-workspace" in text
    assert "pip wheel --require-hashes" in text
    assert "uv build --wheel --all-packages" in text


def test_deployer_carries_a_pinned_and_verified_helm_and_the_chart():
    helm = STAGES["helm"]
    text = helm.text()
    version = dict(a.partition("=")[::2] for a in helm.all("ARG"))
    assert re.fullmatch(r"v3\.\d+\.\d+", version["HELM_VERSION"])
    for arch in ("AMD64", "ARM64"):
        assert re.fullmatch(r"[0-9a-f]{64}", version[f"HELM_SHA256_{arch}"])
    assert "sha256sum -c -" in text
    assert "https://get.helm.sh/helm-${HELM_VERSION}-linux-${arch}.tar.gz" in text
    deployer = STAGES["deployer"].text()
    assert "COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm" in deployer
    assert "COPY charts/model-serving /opt/kubeserve/charts/model-serving" in deployer
    # The chart's values point the deployer at that path.
    values = (REPO / "charts/kubeserve/values.yaml").read_text()
    assert 'chartPath: "/opt/kubeserve/charts/model-serving"' in values
    for name, stage in STAGES.items():
        if name not in {"helm", "deployer"}:
            assert "helm" not in stage.text().lower().replace("helm_", ""), name


def test_builder_has_the_runtime_and_no_setuid_sandbox_helper():
    text = STAGES["builder"].text()
    # The trial's sandbox is kubeserve_runtime.sandbox (kernel calls): no bubblewrap, no setuid.
    assert "bwrap" not in text and "bubblewrap" not in text
    assert '"kubeserve-runtime[s3]"' in text
    # The builder plans against images/base's package set, which an installed wheel cannot
    # find next to its source: the image carries it and points the setting at it.
    assert "COPY images/base/frozen-packages.txt /opt/kubeserve/base/frozen-packages.txt" in text
    assert "KUBESERVE_BASE_PACKAGES_FILE=/opt/kubeserve/base/frozen-packages.txt" in text
    assert (REPO / "images/base/frozen-packages.txt").is_file()


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern[1:] if negate else pattern
            pat = pat.replace("**/", "*")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*"):
                result = not negate
        return result

    for needed in [
        "pyproject.toml",
        "uv.lock",
        "libs/common/pyproject.toml",
        "services/gateway/src/kubeserve_gateway/main.py",
        "cli/pyproject.toml",
        "charts/model-serving/Chart.yaml",
        "images/platform/healthcheck.py",
        "images/base/start.sh",
    ]:
        assert (REPO / needed).exists(), needed
        assert not ignored(needed), f"{needed} is needed by the image build"
    for dropped in [
        ".git/HEAD",
        ".venv/bin/python",
        "services/auth/tests/test_x.py",
        "frontend/node_modules/x/index.js",
        ".env",
        "keys/jwt.pem",
    ]:
        assert ignored(dropped), f"{dropped} must not reach the build context"


def test_the_dockerfile_export_step_resolves_every_service_from_the_lock():
    """Run the wheels stage's `uv export` for real (offline, --frozen)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--all-packages",
            "--no-emit-workspace",
            "--extra",
            "s3",
            "--format",
            "requirements-txt",
            "--no-hashes",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    pins = {
        line.split("==")[0].lower()
        for line in out.stdout.splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert {
        "fastapi",
        "uvicorn",
        "asyncpg",
        "aio-pika",
        "alembic",
        "aioboto3",
        "boto3",
        "scikit-learn",
        "numpy",
        "prometheus-client",
    } <= pins
    assert not any(p.startswith("kubeserve") for p in pins), (
        "workspace packages are built, not fetched"
    )
    assert not {"pytest", "ruff", "moto"} & pins, "dev dependencies must stay out of images"


def test_base_image_installs_under_its_frozen_package_set():
    """The base image installs with `-c frozen-packages.txt`, so indirect dependencies are the
    frozen ones; the frozen set holds every direct pin at its pinned version."""
    text = (REPO / "images/base/Dockerfile").read_text()
    install = text[text.index("RUN pip install --only-binary=:all:") :].split("&&")[0]
    assert "-r /opt/kubeserve/requirements.txt" in install
    assert "-c /opt/kubeserve/frozen-packages.txt" in install

    def pins(path: str) -> dict[str, str]:
        found = {}
        for line in (REPO / path).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                assert version, f"{path}: {line!r} is not pinned with =="
                found[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
        return found

    frozen = pins("images/base/frozen-packages.txt")
    for name, version in pins("images/base/requirements.txt").items():
        assert frozen.get(name) == version, f"{name}=={version} missing from frozen-packages.txt"
