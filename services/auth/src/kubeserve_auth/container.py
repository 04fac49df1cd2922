"""The auth service's container: the common one plus its keys, password hasher and use cases."""

from __future__ import annotations

from dataclasses import dataclass

from kubeserve_common.security.passwords import PasswordHasher
from kubeserve_common.service import ServiceContainer

from kubeserve_auth.adapters.signing_keys import KeyRing
from kubeserve_auth.services.api_keys import ApiKeyService
from kubeserve_auth.services.sessions import SessionService
from kubeserve_auth.services.users import UserService
from kubeserve_auth.settings import AuthSettings


@dataclass(kw_only=True)
class AuthContainer(ServiceContainer):
    settings: AuthSettings
    keys: KeyRing
    hasher: PasswordHasher
    user_service: UserService
    session_service: SessionService
    api_key_service: ApiKeyService
