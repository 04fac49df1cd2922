"""A restart does not pay for Alembic: `upgrade()` reads the chain's head from the revision files
and the database's version table, and only imports Alembic when they differ. Real SQLite files,
the services' own migration chains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from kubeserve_common.db.migrations import at_head, linear_head, upgrade

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("auth", "registry", "builder", "deployer", "gateway")


@pytest.mark.parametrize("service", SERVICES)
def test_the_head_read_from_the_files_is_alembics(service: str) -> None:
    location = ROOT / "services" / service / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    assert linear_head(location) == ScriptDirectory.from_config(cfg).get_current_head()


def test_a_chain_with_two_heads_is_left_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert linear_head(tmp_path) is None


async def test_a_fresh_database_is_migrated_and_then_known_at_head(tmp_path: Path) -> None:
    location = ROOT / "services" / "auth" / "migrations"
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    assert not await at_head(location, url, "auth")
    await upgrade(location, url, "auth")
    assert await at_head(location, url, "auth")


def test_a_restart_on_a_migrated_database_does_not_import_alembic(tmp_path: Path) -> None:
    location = ROOT / "services" / "auth" / "migrations"
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from kubeserve_common.db.migrations import upgrade\n"
        f"asyncio.run(upgrade(Path({str(location)!r}), {url!r}, 'auth'))\n"
        "print('alembic' in sys.modules)\n"
    )
    run = [sys.executable, "-c", script]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    again = subprocess.run(run, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "True"  # a fresh file: migrated by Alembic
    assert again.stdout.strip() == "False"  # at head already: Alembic never loaded
