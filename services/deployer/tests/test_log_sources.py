"""The local backend's log files as `GET /deployments/{id}/logs` reads them, and `since` as the
route parses it: a tenant's model writes these lines, so whatever it prints must not break the
reading; `tail` counts lines as kubectl does; a `since` beyond datetime's range is no 500."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from kubeserve_deployer.backends.local.logs import LocalLogSource
from kubeserve_deployer.domain.logs import LogQuery, parse_since


async def _read(source: LocalLogSource, dep: uuid.UUID, query: LogQuery) -> list[str]:
    return [
        line.text async for line in source.stream(uuid.uuid4(), dep, [0], query) if line is not None
    ]


def _write(tmp_path: Path, text: str) -> tuple[LocalLogSource, uuid.UUID]:
    dep = uuid.uuid4()
    (tmp_path / str(dep)).mkdir()
    (tmp_path / str(dep) / "1-0.log").write_text(text)
    return LocalLogSource(tmp_path), dep


async def test_lines_that_look_like_impossible_instants_are_shown(tmp_path: Path) -> None:
    hostile = [
        "2026-12-02 10:00:00+99:99 an offset of four days",
        "0001-01-01T00:00:00+01:00 before the year 1 in UTC",
        "9999-12-31T23:59:59-01:00 after the year 9999 in UTC",
    ]
    source, dep = _write(tmp_path, "2026-12-02T10:00:00Z started\n" + "\n".join(hostile) + "\n")
    assert await _read(source, dep, LogQuery()) == ["2026-12-02T10:00:00Z started", *hostile]
    # With `since`, they count as as old as the last real stamp before them.
    since = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert len(await _read(source, dep, LogQuery(since=since))) == 4
    assert await _read(source, dep, LogQuery(since=datetime(2026, 12, 3, tzinfo=UTC))) == []


async def test_tail_counts_every_line_shown(tmp_path: Path) -> None:
    source, dep = _write(tmp_path, "one\ntwo\nthree, still being written")
    assert await _read(source, dep, LogQuery(tail=1)) == ["three, still being written"]
    assert await _read(source, dep, LogQuery(tail=2)) == ["two", "three, still being written"]
    assert await _read(source, dep, LogQuery(tail=0)) == []
    assert len(await _read(source, dep, LogQuery())) == 3


def test_since_further_back_than_datetime_reaches_means_everything() -> None:
    now = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert parse_since("999999999h", now=now) is None
    assert parse_since("9" * 60 + "s", now=now) is None
    assert parse_since("1h30m", now=now) == datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
