"""Settings of the registry service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.settings import CommonSettings


class RegistrySettings(CommonSettings):
    port: int = 8082
