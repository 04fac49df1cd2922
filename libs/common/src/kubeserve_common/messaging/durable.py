"""The embedded bus's durable queues: an SQLite file holding every message of every durable queue
until its consumer acknowledged it (after the handler's inbox commit), so a `kill -9` of
`kubeserve up` loses no delivery. Like RabbitMQ's durable queues, a queue declared once keeps
receiving messages while its consumer is not running.

Writes are small single-row statements in WAL mode (`synchronous=NORMAL`: durable across a
process crash, which is what embedded mode needs; an OS crash may lose the last commits)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, patterns TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    attempt INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, id);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL
);
"""


class DurableQueueStore:
    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit; each method is its own short transaction. One connection shared by the
        # loop's thread (and nobody else), guarded in case a caller uses a worker thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._db.executescript(_SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def declare(self, queue: str, patterns: tuple[str, ...]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO queues (name, patterns) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET patterns = excluded.patterns",
                (queue, json.dumps(list(patterns))),
            )

    def queues(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            rows = self._db.execute("SELECT name, patterns FROM queues").fetchall()
        return {name: tuple(json.loads(patterns)) for name, patterns in rows}

    def enqueue(self, queues: list[str], body: bytes) -> dict[str, int]:
        """One message per queue, all or none; the row id of each."""
        ids: dict[str, int] = {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for queue in queues:
                    cursor = self._db.execute(
                        "INSERT INTO messages (queue, body, attempt) VALUES (?, ?, 1)",
                        (queue, body),
                    )
                    ids[queue] = int(cursor.lastrowid or 0)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def pending(self, queue: str) -> list[tuple[int, bytes, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body, attempt FROM messages WHERE queue = ? ORDER BY id", (queue,)
            ).fetchall()
        return [(int(i), bytes(b), int(a)) for i, b, a in rows]

    def ack(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def retry(self, message_id: int, attempt: int) -> None:
        with self._lock:
            self._db.execute("UPDATE messages SET attempt = ? WHERE id = ?", (attempt, message_id))

    def dead_letter(
        self, message_id: int | None, queue: str, body: bytes, reason: str, attempts: int
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if message_id is not None:
                    self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                self._db.execute(
                    "INSERT INTO dead (queue, body, reason, attempts) VALUES (?, ?, ?, ?)",
                    (queue, body, reason, attempts),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def dead(self, queue: str) -> list[tuple[int, bytes, str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body, reason, attempts FROM dead WHERE queue = ? ORDER BY id",
                (queue,),
            ).fetchall()
        return [(int(i), bytes(b), str(r), int(a)) for i, b, r, a in rows]

    def replay(self, queue: str, dead_ids: list[int] | None = None) -> list[tuple[int, bytes]]:
        """Move dead letters of `queue` (all, or those ids) back into it; their new message
        ids and bodies."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, body FROM dead WHERE queue = ? ORDER BY id", (queue,)
                ).fetchall()
                moved: list[tuple[int, bytes]] = []
                for dead_id, body in rows:
                    if dead_ids is not None and dead_id not in dead_ids:
                        continue
                    self._db.execute("DELETE FROM dead WHERE id = ?", (dead_id,))
                    cursor = self._db.execute(
                        "INSERT INTO messages (queue, body, attempt) VALUES (?, ?, 1)",
                        (queue, body),
                    )
                    moved.append((int(cursor.lastrowid or 0), bytes(body)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return moved
