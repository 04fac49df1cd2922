"""`kubeserve-auth serve|worker|migrate`, plus `set-role EMAIL user|admin` for operators (how
an existing account becomes an administrator; new ones can use KUBESERVE_ADMIN_EMAILS)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from kubeserve_common.cli import service_main
from kubeserve_common.errors import KubeServeError

from kubeserve_auth.bootstrap import SERVICE, bootstrap
from kubeserve_auth.main import create_app


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["set-role"]:
        raise SystemExit(set_role(args[1:]))
    service_main(SERVICE, bootstrap, create_app, 8081, args)


def set_role(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kubeserve-auth set-role", description="Give an existing account a role."
    )
    parser.add_argument("email")
    parser.add_argument("role", choices=["user", "admin"])
    args = parser.parse_args(argv)

    async def run() -> int:
        container = bootstrap()
        try:
            user = await container.user_service.set_role(args.email, args.role)
        except (KubeServeError, ValueError) as exc:
            print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 1
        finally:
            await container.engine.dispose()
        print(f"{user.email} ({user.id}) is now {user.role}")
        return 0

    return asyncio.run(run())
