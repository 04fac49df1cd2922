"""Opaque secrets the auth service hands out (refresh tokens, API keys) and how they are stored:
high-entropy random strings, kept only as sha256 digests (a slow hash adds nothing at 256 bits
of entropy, and resolving an API key happens on the request path)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "ks_"
REFRESH_TOKEN_PREFIX = "ksr_"  # noqa: S105 - a public marker, not a secret
API_KEY_DISPLAY_LENGTH = len(API_KEY_PREFIX) + 8
MAX_SECRET_LENGTH = 200  # anything longer cannot be one of ours


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class IssuedSecret:
    value: str  # shown to the client once
    digest: str  # what the database keeps

    @property
    def display_prefix(self) -> str:
        return self.value[:API_KEY_DISPLAY_LENGTH]


def new_refresh_token() -> IssuedSecret:
    value = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return IssuedSecret(value, digest(value))


def new_api_key() -> IssuedSecret:
    value = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return IssuedSecret(value, digest(value))


def plausible_api_key(value: str) -> bool:
    return value.startswith(API_KEY_PREFIX) and len(value) <= MAX_SECRET_LENGTH


def plausible_refresh_token(value: str) -> bool:
    return value.startswith(REFRESH_TOKEN_PREFIX) and len(value) <= MAX_SECRET_LENGTH
