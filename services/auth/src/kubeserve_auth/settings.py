"""Settings of the auth service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.settings import CommonSettings


class AuthSettings(CommonSettings):
    port: int = 8081
