"""Worker entry point of the gateway service: its consumers and outbox relay, with health
endpoints."""

from __future__ import annotations

from kubeserve_gateway.cli import main


def run() -> None:
    main(["worker"])
