"""Parse a model's requirements.txt, diff it against a package set, install only what is missing.

Shared by the base image's start.sh (diff against the installed distributions, install from
the version's wheelhouse) and by the builder (diff against the image's frozen-packages.txt).
Only plain `name[extras] specifier ; marker` lines are accepted: URLs, local paths, `-e`,
includes and index options are rejected with their line number, because a runtime has no
network beyond the object store and must install exactly what the builder vetted. `--hash`
options are accepted and kept (the builder can check wheels against them); pip is not run in
hash-checking mode, since the wheelhouse is already the vetted source.

CLI: `python -m kubeserve_runtime.requirements plan|install requirements.txt
[--wheelhouse DIR] [--frozen FILE] [--target DIR] [--json]`. Imports no numpy/pandas: it runs
before the server, on every cold start.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# pip's own comment rule: '#' at the start or after whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
# Where per-requirement options (--hash=...) begin on a requirement line.
_OPTION_START = re.compile(r"\s(--?[A-Za-z][\w-]*)")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(git|hg|svn|bzr)\+|^file:", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|tgz|tar\.bz2|zip)$", re.IGNORECASE)

_INDEX_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-index",
}
_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_EDITABLE_OPTIONS = {"-e", "--editable"}


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class RequirementsError(ValueError):
    """The file has lines that are not allowed or not valid; one message per line."""

    def __init__(self, errors: Sequence[LineError], source: str = "requirements.txt") -> None:
        self.errors = list(errors)
        self.source = source
        lines = [f"  {source}:{e.line}: {e.message}" for e in self.errors]
        super().__init__(f"{source} is invalid:\n" + "\n".join(lines))


class InstallError(RuntimeError):
    """pip could not install the plan (a wheel missing from the wheelhouse, a bad wheel)."""


@dataclass(frozen=True)
class RequirementLine:
    line: int
    text: str
    requirement: Requirement
    hashes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Yield (first physical line number, text) with comments removed and `\\` joined."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).rstrip()
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        joined = " ".join(part.strip() for part in buffer).strip()
        buffer = []
        if joined:
            yield start, joined
    if buffer:
        joined = " ".join(part.strip() for part in buffer).strip()
        if joined:
            yield start, joined


def _option_error(token: str) -> str:
    flag = token.split("=", 1)[0]
    if flag in _EDITABLE_OPTIONS:
        return "editable installs (-e) are not allowed; list released packages by name"
    if flag in _INDEX_OPTIONS:
        return (
            f"index options ({flag}) are not allowed: packages come from the platform's "
            "vetted wheelhouse"
        )
    if flag in _INCLUDE_OPTIONS:
        return f"includes ({flag}) are not allowed: list every requirement in this file"
    return f"option {flag} is not supported; only 'name[extras] specifier ; marker' lines are"


def _parse_line(number: int, text: str) -> RequirementLine | LineError:
    if text.startswith("-"):
        return LineError(number, _option_error(text.split()[0]))
    spec, options = text, ""
    match = _OPTION_START.search(text)
    if match:
        spec, options = text[: match.start()].strip(), text[match.start() :].strip()
    if _URL.search(spec) or re.search(r"\s@\s|^\S+@\S+://", spec):
        return LineError(number, f"URLs are not allowed ({spec!r}); name a released package")
    if (
        spec.startswith((".", "/", "~", "\\"))
        or _ARCHIVE.search(spec.split(";")[0].strip())
        or ("/" in spec.split(";")[0] and "://" not in spec)
    ):
        return LineError(number, f"local paths are not allowed ({spec!r}); name a package")
    hashes: list[str] = []
    if options:
        try:
            tokens = shlex.split(options)
        except ValueError as exc:
            return LineError(number, f"cannot read the options {options!r}: {exc}")
        i = 0
        while i < len(tokens):
            opt = tokens[i]
            if opt.startswith("--hash="):
                hashes.append(opt.split("=", 1)[1])
            elif opt == "--hash" and i + 1 < len(tokens):
                i += 1
                hashes.append(tokens[i])
            else:
                return LineError(number, _option_error(opt))
            i += 1
        for value in hashes:
            if not re.fullmatch(r"(sha256|sha384|sha512):[0-9a-fA-F]+", value):
                return LineError(number, f"malformed hash {value!r}; expected sha256:<hex>")
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        return LineError(number, f"malformed requirement {spec!r}: {exc}")
    if requirement.url:
        return LineError(number, f"URLs are not allowed ({spec!r}); name a released package")
    return RequirementLine(number, text, requirement, tuple(hashes))


def parse_requirements(text: str, source: str = "requirements.txt") -> list[RequirementLine]:
    """Parse requirements text; raise RequirementsError listing every bad line."""
    parsed: list[RequirementLine] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    # Editors on Windows save UTF-8 with a byte-order mark; it is not part of the first name.
    for number, line in _logical_lines(text.removeprefix("\ufeff")):
        result = _parse_line(number, line)
        if isinstance(result, LineError):
            errors.append(result)
            continue
        if result.name in seen:
            errors.append(
                LineError(
                    number,
                    f"{result.requirement.name} is listed twice (also line "
                    f"{seen[result.name]}); merge the specifiers into one line",
                )
            )
            continue
        seen[result.name] = number
        parsed.append(result)
    if errors:
        raise RequirementsError(errors, source)
    return parsed


def parse_requirements_file(path: str | os.PathLike[str]) -> list[RequirementLine]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequirementsError([LineError(0, f"not UTF-8 text: {exc}")], p.name) from exc
    return parse_requirements(text, p.name)


# -- package sets ------------------------------------------------------------------------------


def installed_versions(path: Sequence[str] | None = None) -> dict[str, str]:
    """Canonical name -> version of the distributions importable from `path` (sys.path).

    The first one found wins, as it does for imports: a package installed into a directory
    that precedes site-packages on the path shadows the image's copy.
    """
    found: dict[str, str] = {}
    search = list(path) if path is not None else list(sys.path)
    for dist in importlib.metadata.distributions(path=search):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def read_frozen(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a `name==version` per line file (frozen-packages.txt)."""
    versions: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = _COMMENT.sub("", line).strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise ValueError(f"{path}:{number}: expected name==version, got {line!r}")
        versions[canonicalize_name(name.strip())] = version.strip()
    return versions


# -- the plan ----------------------------------------------------------------------------------


@dataclass
class PlanItem:
    name: str
    requirement: str
    line: int
    installed: str | None = None
    reason: str = ""


@dataclass
class Plan:
    """What the requirements need compared with a package set."""

    satisfied: list[PlanItem] = field(default_factory=list)
    missing: list[PlanItem] = field(default_factory=list)
    # Present, but at a version outside the specifier: installed beside the image's copy.
    conflicting: list[PlanItem] = field(default_factory=list)
    # Lines whose environment marker does not apply to this interpreter/platform.
    skipped: list[PlanItem] = field(default_factory=list)
    hashes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def to_install(self) -> list[PlanItem]:
        return [*self.missing, *self.conflicting]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["to_install"] = [item.requirement for item in self.to_install]
        return data

    def summary(self) -> str:
        lines = []
        for title, items in (
            ("satisfied", self.satisfied),
            ("missing", self.missing),
            ("conflicting", self.conflicting),
            ("skipped", self.skipped),
        ):
            for item in items:
                lines.append(f"{title:<11} {item.requirement:<40} {item.reason}")
        if not lines:
            lines.append("no requirements")
        return "\n".join(lines)


def make_plan(
    requirements: Sequence[RequirementLine],
    available: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Plan:
    """Diff requirements against `available` (name -> version; default: what is installed)."""
    versions = dict(available) if available is not None else installed_versions()
    versions = {canonicalize_name(k): v for k, v in versions.items()}
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(environment or {})
    env.setdefault("extra", "")
    plan = Plan()
    for req_line in requirements:
        req = req_line.requirement
        name = req_line.name
        item = PlanItem(name=name, requirement=str(req), line=req_line.line)
        if req_line.hashes:
            plan.hashes[name] = list(req_line.hashes)
        if req.marker is not None and not req.marker.evaluate(env):
            item.reason = f"marker '{req.marker}' does not apply"
            plan.skipped.append(item)
            continue
        have = versions.get(name)
        item.installed = have
        if have is None:
            item.reason = "not in the package set"
            plan.missing.append(item)
            continue
        try:
            ok = req.specifier.contains(Version(have), prereleases=True)
        except InvalidVersion:
            ok = not req.specifier  # a non-PEP 440 version only satisfies "any version"
        if ok:
            item.reason = f"{have} satisfies '{req.specifier or 'any'}'"
            plan.satisfied.append(item)
        else:
            item.reason = f"{have} is present but '{req.specifier}' is required"
            plan.conflicting.append(item)
    return plan


# -- CLI ---------------------------------------------------------------------------------------


def _available_for(args: argparse.Namespace) -> dict[str, str]:
    if args.frozen:
        return read_frozen(args.frozen)
    path = list(sys.path)
    if args.target:
        path.insert(0, str(args.target))
    return installed_versions(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubeserve_runtime.requirements",
        description="Diff a requirements.txt against a package set and install what is missing.",
    )
    parser.add_argument("command", choices=("plan", "install"))
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--wheelhouse", type=Path, help="directory of wheels (pip --no-index)")
    parser.add_argument("--frozen", type=Path, help="name==version file to diff against")
    parser.add_argument("--target", type=Path, help="install into this directory")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = parser.parse_args(argv)
    try:
        reqs = parse_requirements_file(args.requirements)
    except RequirementsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot read {args.requirements}: {exc}", file=sys.stderr)
        return 2
    plan = make_plan(reqs, _available_for(args))
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.summary())
    if args.command == "plan":
        return 0
    if args.frozen:
        print(
            "--frozen describes another environment; install diffs against this one",
            file=sys.stderr,
        )
        return 2
    from kubeserve_runtime.installing import install  # the installer imports this module

    try:
        result = install(plan, args.wheelhouse, target=args.target)
    except InstallError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if result.installed:
        print(f"installed: {' '.join(result.installed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
