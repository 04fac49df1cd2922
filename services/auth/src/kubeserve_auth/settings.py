"""Settings of the auth service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

from kubeserve_common.security.passwords import PasswordParams
from kubeserve_common.settings import CommonSettings
from pydantic import Field, SecretStr, model_validator


class MissingSigningKeyError(ValueError):
    """No JWT signing key configured outside dev mode."""


class WeakPasswordParamsError(ValueError):
    """argon2 parameters below OWASP's minimum outside dev mode."""


class AuthSettings(CommonSettings):
    port: int = 8081

    # -- JWT signing keys ------------------------------------------------------------------------
    jwt_private_key: SecretStr | None = Field(
        default=None,
        description="PEM of the EC P-256 key signing access tokens. Required outside dev mode; "
        "dev mode generates one under <home>/auth/jwt-signing-key.pem.",
    )
    jwt_previous_private_key: SecretStr | None = Field(
        default=None,
        description="PEM of the key used before the last rotation; its public half stays in the "
        "JWKS so tokens it signed keep verifying until they expire.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300, le=365 * 86_400)

    # -- users and roles -------------------------------------------------------------------------
    admin_emails: str = Field(
        default="",
        description="Comma-separated emails whose registration gets the admin role.",
    )

    # -- passwords (defaults: RFC 9106 low-memory argon2id) ---------------------------------------
    password_time_cost: int = Field(default=3, ge=1, le=20)
    password_memory_kib: int = Field(default=64 * 1024, ge=8, le=4 * 1024 * 1024)
    password_parallelism: int = Field(default=4, ge=1, le=16)
    password_hash_concurrency: int = Field(
        default=2, ge=1, le=64, description="Hashes computed at once per process."
    )

    # -- login throttling (per account, exponential) -----------------------------------------------
    login_failures_before_backoff: int = Field(default=5, ge=1, le=100)
    login_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0, le=86_400)

    # -- API keys --------------------------------------------------------------------------------
    api_keys_per_user: int = Field(default=100, ge=1, le=10_000)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    @property
    def admin_email_set(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    @property
    def password_params(self) -> PasswordParams:
        return PasswordParams(
            time_cost=self.password_time_cost,
            memory_kib=self.password_memory_kib,
            parallelism=self.password_parallelism,
        )

    @model_validator(mode="after")
    def _refuse_weak_production_config(self) -> AuthSettings:
        if self.dev_mode:
            return self
        if self.jwt_private_key is None or not self.jwt_private_key.get_secret_value().strip():
            raise MissingSigningKeyError(
                "KUBESERVE_JWT_PRIVATE_KEY is not set: give the auth service an EC P-256 private "
                "key in PEM (e.g. `openssl genpkey -algorithm EC -pkeyopt "
                "ec_paramgen_curve:P-256`), or run with KUBESERVE_DEV_MODE=true to generate one"
            )
        if not self.password_params.meets_owasp_minimum():
            raise WeakPasswordParamsError(
                "KUBESERVE_PASSWORD_* argon2 parameters are below OWASP's minimum "
                "(e.g. memory 19456 KiB with time cost 2); they are only allowed in dev mode"
            )
        return self
