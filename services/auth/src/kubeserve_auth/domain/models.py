"""What the use cases return: plain, immutable views (no ORM objects leave the services)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UserView:
    id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UserPage:
    items: list[UserView]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True)
class RateLimit:
    """Requests per second (the refill of a token bucket) and the burst it allows."""

    requests_per_second: float
    burst: int


@dataclass(frozen=True)
class ApiKeyView:
    id: uuid.UUID
    name: str
    prefix: str
    deployment_ids: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class CreatedApiKey:
    key: ApiKeyView
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class ResolvedApiKey:
    user_id: uuid.UUID
    role: str
    api_key_id: uuid.UUID
    deployment_ids: list[str] | None
    rate_limit: RateLimit | None = None
