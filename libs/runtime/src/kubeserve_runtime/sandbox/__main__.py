"""`python -m kubeserve_runtime.sandbox`: run a command confined, or probe the sandbox.

    python -m kubeserve_runtime.sandbox --spec JSON [--report-fd N] -- PROGRAM ARG...
        Confine this process per the spec, then exec PROGRAM inside (the environment is the
        spec's). With --report-fd, one JSON line goes to that descriptor: {"pid": host pid of
        the confined process} or {"error": why the sandbox could not be had}.
    python -m kubeserve_runtime.sandbox --probe [--no-python-env]
        Confine a child, print what it could see and do as JSON; exit 0 only when every
        hostile attempt was refused.

Exit status: the confined program's, or 121 (EXIT_SANDBOX_FAILED) when confinement failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from kubeserve_runtime.sandbox.spec import EXIT_SANDBOX_FAILED, SandboxSpec, SpecError


def _report(fd: int | None, message: dict[str, object]) -> None:
    if fd is None:
        return
    try:
        os.write(fd, json.dumps(message).encode() + b"\n")
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeserve_runtime.sandbox")
    parser.add_argument("--spec", help="the SandboxSpec as JSON")
    parser.add_argument("--report-fd", type=int, default=None)
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--no-python-env", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.probe:
        from kubeserve_runtime.sandbox.probe import probe

        result = probe(python_env=not args.no_python_env)
        print(json.dumps(result, indent=2))
        return 0 if result["ok"] else 1
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.spec or not command:
        parser.error("--spec JSON -- PROGRAM [ARG...] (or --probe)")
    try:
        spec = SandboxSpec.from_json(args.spec)
    except SpecError as exc:
        _report(args.report_fd, {"error": str(exc)})
        parser.error(str(exc))
    from kubeserve_runtime.sandbox.core import SandboxUnavailable, enter

    report_fd = args.report_fd
    try:
        enter(spec, on_child=lambda pid: _report(report_fd, {"pid": pid}))
    except SandboxUnavailable as exc:
        _report(report_fd, {"error": str(exc)})
        print(f"sandbox unavailable: {exc}", file=sys.stderr)
        return EXIT_SANDBOX_FAILED
    # Confined now. The report descriptor was closed by the supervisor's copy only.
    if report_fd is not None:
        try:
            os.close(report_fd)
        except OSError:
            pass
    try:
        os.execvp(command[0], command)  # noqa: S606 - the launcher's own argv, no shell
    except OSError as exc:
        print(f"sandbox: cannot run {command[0]}: {exc}", file=sys.stderr)
    return EXIT_SANDBOX_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
