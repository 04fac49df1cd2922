"""`kubeserve` - run the platform locally (`up`); client commands arrive with the deployer issue."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from kubeserve_common.logging import configure_logging
from kubeserve_common.settings import DEFAULT_HOME


def _up(args: argparse.Namespace) -> int:
    from kubeserve_cli import embedded

    configure_logging(args.log_level, json_logs=args.json_logs)
    home = Path(args.home).expanduser()

    def ready(url: str) -> None:
        print(
            f"\nKubeServe is running (embedded mode)\n"
            f"  API:      {url}/api/v1\n"
            f"  API docs: {url}/docs\n"
            f"  health:   {url}/readyz\n"
            f"  data:     {home}\n"
            "Press Ctrl+C to stop.\n",
            flush=True,
        )

    try:
        asyncio.run(embedded.run(home, host=args.host, port=args.port, on_ready=ready))
    except OSError as exc:
        print(f"kubeserve up: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeserve", description="KubeServe - upload a model, get a prediction URL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole platform in this process (embedded mode)")
    up.add_argument("--host", default="127.0.0.1", help="interface of the public gateway")
    up.add_argument("--port", type=int, default=int(os.environ.get("KUBESERVE_PORT", "8080")))
    up.add_argument(
        "--home",
        default=os.environ.get("KUBESERVE_HOME", str(DEFAULT_HOME)),
        help="where the embedded mode keeps its databases and artifacts",
    )
    up.add_argument("--log-level", default="WARNING")
    up.add_argument("--json-logs", action="store_true", help="structured JSON logs")
    up.set_defaults(func=_up)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
