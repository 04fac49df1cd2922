"""Which top-level modules a version's own requirements provide (the scan's second allow-list).

Read from metadata only, never by importing: a wheel's `top_level.txt`, else the top-level
entries its file list holds; for a requirement the base image already satisfies, the same from
the installed distribution of this (the builder's) environment, which mirrors the base image.
"""

from __future__ import annotations

import importlib.metadata
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name


def _tops_of_names(names: Iterable[str]) -> set[str]:
    tops: set[str] = set()
    for name in names:
        first = name.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")):
            continue
        if "/" in name:
            tops.add(first)
        elif first.endswith(".py"):
            tops.add(first[:-3])
        elif first.endswith(".so") or first.endswith(".pyd"):
            tops.add(first.split(".", 1)[0])
    return {t for t in tops if t.isidentifier()}


def wheel_modules(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        listed = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
        if listed is not None:
            text = archive.read(listed).decode("utf-8", "replace")
            tops = {line.strip() for line in text.splitlines() if line.strip().isidentifier()}
            if tops:
                return tops
        return _tops_of_names(names)


def installed_modules(requirement: str) -> set[str]:
    """Top-level modules of an installed distribution (empty when it is not installed)."""
    try:
        dist = importlib.metadata.distribution(requirement)
    except importlib.metadata.PackageNotFoundError:
        return set()
    text = dist.read_text("top_level.txt")
    if text:
        tops = {line.strip() for line in text.splitlines() if line.strip().isidentifier()}
        if tops:
            return tops
    return _tops_of_names(str(f) for f in dist.files or ())


def provided_modules(wheels: Iterable[Path], requirement_names: Iterable[str]) -> set[str]:
    """Every top-level module the wheels hold, plus those of the named requirements that the
    base image satisfies (found in this environment, else the name itself, `-` as `_`)."""
    provided: set[str] = set()
    for wheel in wheels:
        provided |= wheel_modules(wheel)
    for name in requirement_names:
        found = installed_modules(name)
        provided |= found or {str(canonicalize_name(name)).replace("-", "_")}
    return provided
