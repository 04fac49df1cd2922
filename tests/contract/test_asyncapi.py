"""docs/asyncapi.yaml passes the official AsyncAPI parser (`@asyncapi/parser`, npm) without an
error or a warning. The parser is installed once into tests/contract/asyncapi/node_modules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kubeserve_common.events.catalog import catalog

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tests" / "contract" / "asyncapi"


def _parser_installed() -> None:
    if (CHECKER / "node_modules" / "@asyncapi" / "parser").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is required for the AsyncAPI check (apt-get install -y nodejs npm)"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CHECKER,
        check=True,
        timeout=600,
    )


def _check(document: Path) -> subprocess.CompletedProcess[str]:
    _parser_installed()
    node = shutil.which("node")
    assert node, "node is required for the AsyncAPI check"
    return subprocess.run(
        [node, "check.mjs", str(document)],
        cwd=CHECKER,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_asyncapi_document_passes_the_official_parser() -> None:
    result = _check(ROOT / "docs" / "asyncapi.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(catalog())  # one message and one publish operation per catalog type
    assert f"OK: {count} messages, {count} operations" in result.stdout


def test_the_checker_fails_a_document_the_parser_rejects(tmp_path: Path) -> None:
    # The defect the issue found: deliveryMode is an operation binding, not a message binding.
    text = (ROOT / "docs" / "asyncapi.yaml").read_text()
    broken = tmp_path / "asyncapi.yaml"
    moved = text.replace("  messageType:", "  deliveryMode: 2\n          messageType:", 1)
    broken.write_text(moved)
    result = _check(broken)
    assert result.returncode == 1
    assert "deliveryMode" in result.stdout
