"""Worker entry point of the builder service: its consumer, build loop and outbox relay, with
health endpoints."""

from __future__ import annotations

from kubeserve_builder.cli import main


def run() -> None:
    main(["worker"])
