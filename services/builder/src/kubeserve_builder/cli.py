"""`kubeserve-builder serve|worker|migrate`."""

from __future__ import annotations

from kubeserve_common.cli import service_main

from kubeserve_builder.bootstrap import SERVICE, bootstrap
from kubeserve_builder.main import create_app


def main(argv: list[str] | None = None) -> None:
    service_main(SERVICE, bootstrap, create_app, 8083, argv)
