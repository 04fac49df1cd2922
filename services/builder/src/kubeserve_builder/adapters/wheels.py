"""Fetch the wheels a version needs with `pip download --only-binary=:all:` (no sdists, so no
package code runs in the builder), from a configurable index or a local `--find-links` source.

pip runs with the machine's pip configuration switched off (`PIP_CONFIG_FILE=/dev/null`), so
the index in the settings is the only one used, and with a minimal environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

_OUTPUT_TAIL = 20  # lines of pip's output kept for a failure reason
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

    def command(self, requirements: Path, dest: Path) -> list[str]:
        cmd = [
            self.python, "-m", "pip", "download",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            "--only-binary=:all:",
            "--dest", str(dest),
            "--timeout", str(self.network_timeout),
            "--retries", "2",
            "--no-deps",
        ]  # fmt: skip
        if self.source.find_links:
            cmd += ["--no-index", "--find-links", self.source.find_links]
        else:
            cmd += ["--index-url", self.source.index_url]
        if self.source.python_version:
            cmd += ["--python-version", self.source.python_version]
        for platform in self.source.platforms:
            cmd += ["--platform", platform]
        return [*cmd, "--requirement", str(requirements)]

    async def download(self, requirements: list[str], workdir: Path, dest: Path) -> list[Path]:
        """Download the wheels of `requirements` alone (`--no-deps`: the caller resolves the
        dependencies the base image lacks, round by round) into `dest`; return every wheel
        now in `dest`."""
        req_file = await asyncio.to_thread(_prepare, requirements, workdir, dest)
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update(
            PATH=os.environ.get("PATH", "/usr/bin:/bin"),
            HOME=str(workdir),
            PIP_CONFIG_FILE=os.devnull,
            PIP_NO_CACHE_DIR="1",
            PYTHONNOUSERSITE="1",
        )
        proc = await asyncio.create_subprocess_exec(
            *self.command(req_file, dest),
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
                f"pip download did not finish within {self.timeout:.0f} s "
                f"(index {self.source.describe()})"
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(_kill(proc))
            raise
        if proc.returncode != 0:
            lines = output.decode("utf-8", "replace").strip().splitlines()
            errors = [line for line in lines if "ERROR" in line] or lines[-_OUTPUT_TAIL:]
            raise WheelDownloadError(
                f"pip download failed (exit {proc.returncode}, index {self.source.describe()}): "
                + " | ".join(line.strip() for line in errors[-_OUTPUT_TAIL:])
            )
        return await asyncio.to_thread(lambda: sorted(dest.glob("*.whl")))


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
