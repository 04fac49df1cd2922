"""Composition root of the auth service: the one place that builds its engine, bus and adapters.
The HTTP app, the worker and the tests all get their container from `bootstrap()`."""

from __future__ import annotations

from pathlib import Path

from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.security.passwords import PasswordHasher
from kubeserve_common.service import build_container

from kubeserve_auth.adapters.signing_keys import load_key_ring
from kubeserve_auth.container import AuthContainer
from kubeserve_auth.domain.throttle import BackoffPolicy
from kubeserve_auth.services.api_keys import ApiKeyService
from kubeserve_auth.services.sessions import SessionService
from kubeserve_auth.services.users import UserService
from kubeserve_auth.settings import AuthSettings

SERVICE = "auth"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(
    settings: AuthSettings | None = None, *, bus: EventBus | None = None
) -> AuthContainer:
    settings = settings or AuthSettings()
    keys = load_key_ring(settings)  # before anything else: a bad key must stop the start
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    hasher = PasswordHasher(
        settings.password_params, max_concurrency=settings.password_hash_concurrency
    )
    backoff = BackoffPolicy(
        threshold=settings.login_failures_before_backoff,
        base_seconds=settings.login_backoff_base_seconds,
        max_seconds=settings.login_backoff_max_seconds,
    )
    return AuthContainer(
        **base.parts(),  # the common parts, settings included
        keys=keys,
        hasher=hasher,
        user_service=UserService(base.uow, hasher, settings.admin_email_set),
        session_service=SessionService(
            base.uow,
            hasher,
            keys,
            backoff,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        ),
        api_key_service=ApiKeyService(base.uow, max_active_per_user=settings.api_keys_per_user),
    )
