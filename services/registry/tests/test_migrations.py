"""The registry's migrations go up, down and up again on SQLite (the embedded mode); PostgreSQL
is exercised by every other test, which starts the service on it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from kubeserve_common.db.migrations import _config, upgrade_sync
from kubeserve_registry.bootstrap import MIGRATIONS, SERVICE


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_round_trip_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(MIGRATIONS, url, SERVICE)
    assert {"models", "versions", "deployments", "outbox", "inbox"} <= tables(path)
    command.downgrade(_config(MIGRATIONS, url, SERVICE), "0001")
    assert not {"models", "versions", "deployments"} & tables(path)
    assert {"outbox", "inbox"} <= tables(path)
    upgrade_sync(MIGRATIONS, url, SERVICE)
    assert {"models", "versions", "deployments"} <= tables(path)
