"""`promtool` (Debian's `prometheus` package) as a judge in tests: `check metrics` on an
exposition, `check rules` on rule files. A missing promtool fails the test with the fix."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install -y prometheus (scripts/ensure-services.sh)"
    return found


def check_metrics(exposition: str | bytes) -> str:
    """promtool's complaints about an exposition ('' when it passes)."""
    data = exposition.encode() if isinstance(exposition, str) else exposition
    result = subprocess.run(  # noqa: S603 - our own binary, our own input
        [promtool(), "check", "metrics"], input=data, capture_output=True, timeout=60, check=False
    )
    complaints = (result.stdout + result.stderr).decode().strip()
    return complaints if result.returncode != 0 or complaints else ""


def check_rules(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [promtool(), "check", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
