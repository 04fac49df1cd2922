"""Settings base shared by every service: `KUBESERVE_`-prefixed environment, secrets as
SecretStr, default secrets refused outside dev mode."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_SECRET = "dev-internal-secret-change-me"  # noqa: S105 - the refused default
DEFAULT_HOME = Path.home() / ".kubeserve"


class CommonSettings(BaseSettings):
    """What every service process needs. Services subclass it and add their own fields.

    `database_url` may be PostgreSQL (`postgresql+asyncpg://...`) or SQLite
    (`sqlite+aiosqlite:///path/to/file.db`, the embedded mode). `broker_url` is an AMQP URL or
    `memory://` for the in-process bus.
    """

    model_config = SettingsConfigDict(env_prefix="KUBESERVE_", extra="ignore")

    dev_mode: bool = Field(default=False, description="Allows default secrets and dev keys.")
    home: Path = Field(default=DEFAULT_HOME, description="Where the embedded mode keeps its data.")
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/kubeserve"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = Field(
        default="", description="Prefix for every exchange and queue name (test isolation)."
    )
    migrate_on_start: bool = True
    internal_secret: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    # Where the services find each other (internal HTTP). The embedded runner sets these too.
    gateway_url: str = "http://127.0.0.1:8080"
    auth_url: str = "http://127.0.0.1:8081"
    registry_url: str = "http://127.0.0.1:8082"
    builder_url: str = "http://127.0.0.1:8083"
    deployer_url: str = "http://127.0.0.1:8084"
    http_timeout: float = Field(default=10.0, gt=0, description="Seconds for internal calls.")
    log_level: str = "INFO"
    log_json: bool = True
    outbox_poll_interval: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    publish_timeout: float = Field(default=10.0, gt=0)
    db_timeout: float = Field(default=5.0, gt=0, description="Seconds for readiness probes.")

    def secret_fields(self) -> dict[str, tuple[SecretStr, str]]:
        """Secret fields with the insecure default each one must not keep outside dev mode."""
        return {"internal_secret": (self.internal_secret, DEV_INTERNAL_SECRET)}

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> CommonSettings:
        if self.dev_mode:
            return self
        for name, (value, default) in self.secret_fields().items():
            if value.get_secret_value() == default:
                raise ValueError(
                    f"KUBESERVE_{name.upper()} still has its development default; set a real "
                    "secret or run with KUBESERVE_DEV_MODE=true"
                )
        return self
