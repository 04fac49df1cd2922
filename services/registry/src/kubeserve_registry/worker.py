"""Worker entry point of the registry service: its consumers and outbox relay, with health endpoints."""

from __future__ import annotations

from kubeserve_registry.cli import main


def run() -> None:
    main(["worker"])
