"""Resolve and fetch the wheels a version needs, with pip's own resolver, from a configurable
index or a local `--find-links` source, wheels only (`--only-binary=:all:`: no sdist, so no
package code runs in the builder).

- `resolve()`: `pip install --dry-run --report` (pip's backtracking resolver) against an empty
  virtual environment holding only metadata stubs of the base image's packages, so what the image
  has counts as installed, exactly at the image's versions, and only what it lacks or the version
  replaces is planned; the report gives exact pins.
- `download()`: `pip download --no-deps` of those pins.

pip runs with the machine's pip configuration switched off (`PIP_CONFIG_FILE=/dev/null`), so
the index in the settings is the only one used, and with a minimal environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

_OUTPUT_TAIL = 20  # lines of pip's output kept for a failure reason
_QUIET = ("--disable-pip-version-check", "--no-input")
_PASS_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


class WheelDownloadError(Exception):
    """pip could not produce the wheels (a missing package, no wheel for the platform, a
    conflict, an unreachable index); the message carries pip's own words."""


@dataclass(frozen=True)
class WheelSource:
    index_url: str
    find_links: str | None = None
    python_version: str | None = None
    platforms: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"--find-links {self.find_links}" if self.find_links else self.index_url


class WheelDownloader:
    def __init__(
        self,
        source: WheelSource,
        *,
        python: str | None = None,
        timeout: float = 600.0,
        network_timeout: float = 30.0,
    ) -> None:
        self.source = source
        self.python = python or sys.executable
        self.timeout = timeout
        self.network_timeout = network_timeout

    def _source_options(self) -> list[str]:
        cmd = [
            "--progress-bar", "off", "--only-binary=:all:",
            "--timeout", str(self.network_timeout), "--retries", "2",
        ]  # fmt: skip
        if self.source.find_links:
            cmd += ["--no-index", "--find-links", self.source.find_links]
        else:
            cmd += ["--index-url", self.source.index_url]
        if self.source.python_version:
            cmd += ["--python-version", self.source.python_version]
        for platform in self.source.platforms:
            cmd += ["--platform", platform]
        return cmd

    def command(self, requirements: Path, dest: Path) -> list[str]:
        return [
            self.python, "-m", "pip", *_QUIET, "download", *self._source_options(),
            "--dest", str(dest), "--no-deps", "--requirement", str(requirements),
        ]  # fmt: skip

    def resolve_command(self, requirements: Path, env_python: Path, report: Path) -> list[str]:
        return [
            self.python, "-m", "pip", *_QUIET, "--python", str(env_python),
            "install", "--dry-run", "--quiet", "--report", str(report), *self._source_options(),
            "--requirement", str(requirements),
        ]  # fmt: skip

    async def resolve(
        self, requirements: list[str], installed: dict[str, str], workdir: Path
    ) -> list[str]:
        """Exact pins (`name==version`) of every wheel to fetch so that `requirements` hold
        beside `installed` (the base image's packages, less those the version replaces): pip's
        resolver, with `installed` as an environment it must keep where it can."""
        req_file, env_python = await asyncio.to_thread(
            _prepare_resolution, requirements, installed, workdir
        )
        report = workdir / "resolution.json"
        await self._pip(self.resolve_command(req_file, env_python, report), workdir, "resolve")
        try:
            data = json.loads(await asyncio.to_thread(report.read_text, encoding="utf-8"))
            return [
                f"{item['metadata']['name']}=={item['metadata']['version']}"
                for item in data.get("install", [])
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WheelDownloadError(f"pip's resolution report is unreadable: {exc}") from None

    async def download(self, requirements: list[str], workdir: Path, dest: Path) -> list[Path]:
        """Download the wheels of `requirements` alone (`--no-deps`: `resolve()` gave the
        whole set) into `dest`; return every wheel now in `dest`."""
        req_file = await asyncio.to_thread(_prepare, requirements, workdir, dest)
        await self._pip(self.command(req_file, dest), workdir, "download")
        return await asyncio.to_thread(lambda: sorted(dest.glob("*.whl")))

    async def _pip(self, cmd: list[str], workdir: Path, what: str) -> None:
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update(
            PATH=os.environ.get("PATH", "/usr/bin:/bin"),
            HOME=str(workdir),
            PIP_CONFIG_FILE=os.devnull,
            PIP_NO_CACHE_DIR="1",
            PYTHONNOUSERSITE="1",
        )
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            await _kill(proc)
            raise WheelDownloadError(
                f"pip {what} did not finish within {self.timeout:.0f} s "
                f"(index {self.source.describe()})"
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(_kill(proc))
            raise
        if proc.returncode != 0:
            lines = output.decode("utf-8", "replace").strip().splitlines()
            errors = [line for line in lines if "ERROR" in line] or lines[-_OUTPUT_TAIL:]
            raise WheelDownloadError(
                f"pip {what} failed (exit {proc.returncode}, index {self.source.describe()}): "
                + " | ".join(line.strip() for line in errors[-_OUTPUT_TAIL:])
            )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _prepare(requirements: list[str], workdir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    req_file = workdir / "wheel-requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return req_file


def _prepare_resolution(
    requirements: list[str], installed: dict[str, str], workdir: Path
) -> tuple[Path, Path]:
    """The requirements file and an empty virtual environment (no pip in it) whose
    site-packages holds one metadata-only `.dist-info` per installed package: what pip's
    resolver then sees as already there."""
    workdir.mkdir(parents=True, exist_ok=True)
    req_file = workdir / "resolve-requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    env_dir = workdir / "base-env"
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(env_dir)
    (site,) = env_dir.glob("lib/python*/site-packages")
    for name, version in installed.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "INSTALLER").write_text("kubeserve-base-image\n", encoding="utf-8")
        (info / "RECORD").write_text("", encoding="utf-8")
    return req_file, env_dir / "bin" / "python"
