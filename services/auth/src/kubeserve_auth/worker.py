"""Worker entry point of the auth service: its consumers and outbox relay, with health endpoints."""

from __future__ import annotations

from kubeserve_auth.cli import main


def run() -> None:
    main(["worker"])
