"""Settings of the gateway service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    port: int = 8080
