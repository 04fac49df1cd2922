"""`kubeserve-deployer serve|worker|migrate`."""

from __future__ import annotations

from kubeserve_common.cli import service_main

from kubeserve_deployer.bootstrap import SERVICE, bootstrap
from kubeserve_deployer.main import create_app


def main(argv: list[str] | None = None) -> None:
    service_main(SERVICE, bootstrap, create_app, 8084, argv)
