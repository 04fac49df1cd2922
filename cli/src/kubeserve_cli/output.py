"""Terminal output for the CLI: a progress bar, steps, tables, errors."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def info(message: str) -> None:
    print(f"    {message}", flush=True)


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def dump(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def render(data: Any, columns: list[str], fmt: str, *, single: bool = False) -> None:
    """`-o json`: the API's objects as JSON; `-o table`: the columns. `single`: one object."""
    plain = _plain(data)
    if fmt == "json":
        dump(plain)
    else:
        table([plain] if single else list(plain), columns)


def _plain(data: Any) -> Any:
    if hasattr(data, "to_dict"):
        return data.to_dict()
    if isinstance(data, list):
        return [_plain(d) for d in data]
    return data


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


class ProgressBar:
    """`[#####-----]  45%  12.0/26.7 MiB  8.1 MiB/s` on stderr, redrawn at most 10 times/s."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.tty = sys.stderr.isatty()
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.finished or (done < total and now - self.last_draw < 0.1):
            return
        self.finished = done >= total
        self.last_draw = now
        fraction = done / total if total else 1.0
        rate = done / max(now - self.started, 1e-6) / 2**20
        bar = "#" * int(fraction * 30)
        line = (
            f"{self.label} [{bar:<30}] {fraction:4.0%} "
            f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB {rate:.1f} MiB/s"
        )
        if self.tty:
            sys.stderr.write("\r" + line)
            if done >= total:
                sys.stderr.write("\n")
        elif done >= total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
