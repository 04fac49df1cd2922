"""Request and response bodies of the auth API (Pydantic at the edge)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from kubeserve_auth.domain.policy import normalise_email

# Hard caps that stop silly payloads before any work; the password policy has its own, lower,
# limit with a friendlier message.
MAX_PASSWORD_INPUT = 4096
MAX_EMAIL_INPUT = 320


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class RegisterRequest(_Strict):
    email: Annotated[StrictStr, Field(max_length=MAX_EMAIL_INPUT, examples=["ada@example.com"])]
    password: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PASSWORD_INPUT)]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)


class LoginRequest(_Strict):
    """JSON login. The OAuth2 password form (`username`, `password`) maps onto it."""

    email: Annotated[StrictStr, Field(min_length=1, max_length=MAX_EMAIL_INPUT)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PASSWORD_INPUT)]


class RefreshRequest(_Strict):
    refresh_token: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds the access token stays valid.")
    refresh_token: str
    refresh_expires_in: int = Field(description="Seconds the refresh token stays valid.")


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserPageRead(BaseModel):
    items: list[UserRead]
    total: int
    limit: int
    offset: int


MAX_KEY_RPS = 100_000.0
MAX_KEY_BURST = 1_000_000


class RateLimitSpec(_Strict):
    """A key's own rate limit: a token bucket refilled at `requests_per_second` up to `burst`
    requests. The gateway also limits each deployment as a whole."""

    requests_per_second: float = Field(gt=0, le=MAX_KEY_RPS, allow_inf_nan=False, strict=False)
    burst: int = Field(
        default=0, ge=0, le=MAX_KEY_BURST, strict=True, description="0: twice the rate, at least 1."
    )

    @model_validator(mode="after")
    def _default_burst(self) -> RateLimitSpec:
        if self.burst == 0:
            self.burst = max(1, round(2 * self.requests_per_second))
        return self


class ApiKeyCreate(_Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    deployment_ids: Annotated[
        list[uuid.UUID] | None,
        Field(
            default=None,
            min_length=1,
            max_length=100,
            description="Limit the key to these deployments; omit for all of yours.",
        ),
    ]
    expires_at: datetime | None = Field(default=None, description="Absolute expiry (UTC).")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, strict=True)
    rate_limit: RateLimitSpec | None = Field(
        default=None,
        description="This key's own rate limit; omit for the platform's default per key "
        "(1000 requests/s, burst 2000 unless the operator changed it).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        if any(unicodedata.category(ch).startswith("C") for ch in value):
            raise ValueError("name must not contain control characters")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiKeyCreate:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return self


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    deployment_ids: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_limit: RateLimitSpec | None = Field(
        default=None, description="The key's own rate limit; null: the platform default."
    )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. Shown once: store it now.")


class ApiKeyResolveRequest(_Strict):
    api_key: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


class ApiKeyResolved(BaseModel):
    user_id: uuid.UUID
    role: str
    api_key_id: uuid.UUID
    deployment_ids: list[str] | None
    rate_limit: RateLimitSpec | None = None
