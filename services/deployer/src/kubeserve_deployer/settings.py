"""Settings of the deployer service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.settings import CommonSettings


class DeployerSettings(CommonSettings):
    port: int = 8084
