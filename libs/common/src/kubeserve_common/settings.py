"""Settings base shared by every service: `KUBESERVE_`-prefixed environment, secrets as
SecretStr. No secret has a default: dev mode (the embedded platform, tests) generates them under
the home at first start; other modes refuse to start without them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubeserve_common.security.secrets import home_secret, weak_secret_reason

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
    internal_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the caller identity the gateway passes to internal services. Required "
        "outside dev mode; dev mode generates one under <home>/secrets/internal-secret.",
    )
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
    outbox_idle_interval: float = Field(
        default=30.0,
        gt=0,
        description="Longest safety-net poll of an idle outbox relay (commits and PostgreSQL "
        "NOTIFY wake it at once); the poll doubles from outbox_poll_interval up to this.",
    )
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    publish_timeout: float = Field(default=10.0, gt=0)
    db_timeout: float = Field(default=5.0, gt=0, description="Seconds for readiness probes.")

    def secret_fields(self) -> dict[str, SecretStr]:
        """Secret fields every process of the platform must agree on; none has a default."""
        return {"internal_secret": self.internal_secret}

    @model_validator(mode="after")
    def _no_public_secrets(self) -> CommonSettings:
        for name, value in self.secret_fields().items():
            variable = f"KUBESERVE_{name.upper()}"
            if not value.get_secret_value():
                if not self.dev_mode:
                    raise ValueError(
                        f"{variable} is not set: give every service the same random value (e.g. "
                        "`openssl rand -hex 32`), or run with KUBESERVE_DEV_MODE=true to have one "
                        "generated under the home"
                    )
                generated = home_secret(self.home / "secrets" / name.replace("_", "-"))
                setattr(self, name, SecretStr(generated))
                continue
            reason = weak_secret_reason(value.get_secret_value())
            if reason:
                raise ValueError(f"{variable} {reason}: set a random value (openssl rand -hex 32)")
        return self
