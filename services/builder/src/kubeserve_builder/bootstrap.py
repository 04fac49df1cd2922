"""Composition root of the builder service: the one place that builds its engine, bus and adapters.
The HTTP app, the worker and the tests all get their container from `bootstrap()`."""

from __future__ import annotations

from pathlib import Path

from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.service import ServiceContainer, build_container

from kubeserve_builder.settings import BuilderSettings

SERVICE = "builder"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(settings: BuilderSettings | None = None, *, bus: EventBus | None = None) -> ServiceContainer:
    settings = settings or BuilderSettings()
    return build_container(SERVICE, settings, MIGRATIONS, bus=bus)
