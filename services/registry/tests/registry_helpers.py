"""The registry under test (a real server on 127.0.0.1) and the calls tests make to it.
Imported by the tests by module name (conftest files of several services would clash)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal
from kubeserve_registry.bootstrap import RegistryContainer
from kubeserve_registry.settings import RegistrySettings


@dataclass
class Registry:
    url: str
    container: RegistryContainer
    settings: RegistrySettings

    def auth(self, user_id: uuid.UUID) -> dict[str, str]:
        secret = self.settings.internal_secret.get_secret_value()
        return {PRINCIPAL_HEADER: encode_principal(Principal(user_id=user_id), secret, 3600)}

    def client(self, user_id: uuid.UUID | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = self.auth(user_id) if user_id else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60, **kw)
