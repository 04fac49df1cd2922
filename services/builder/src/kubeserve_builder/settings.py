"""Settings of the builder service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.settings import CommonSettings


class BuilderSettings(CommonSettings):
    port: int = 8083
