"""Worker entry point of the registry service: consumers and the outbox relay, health only."""

from __future__ import annotations

from kubeserve_registry.cli import main


def run() -> None:
    main(["worker"])
