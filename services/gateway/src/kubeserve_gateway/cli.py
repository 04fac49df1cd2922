"""`kubeserve-gateway serve|worker|migrate`."""

from __future__ import annotations

from kubeserve_common.cli import service_main

from kubeserve_gateway.bootstrap import SERVICE, bootstrap
from kubeserve_gateway.main import create_app


def main(argv: list[str] | None = None) -> None:
    service_main(SERVICE, bootstrap, create_app, 8080, argv)
