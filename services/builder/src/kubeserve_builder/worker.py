"""Worker entry point of the builder service: its consumers and outbox relay, with health endpoints."""

from __future__ import annotations

from kubeserve_builder.cli import main


def run() -> None:
    main(["worker"])
