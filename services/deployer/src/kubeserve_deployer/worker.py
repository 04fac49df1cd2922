"""Worker entry point of the deployer service: its consumers, reconcile loop and outbox relay,
with health endpoints."""

from __future__ import annotations

from kubeserve_deployer.cli import main


def run() -> None:
    main(["worker"])
