"""Errors of the auth domain; each is a KubeServeError, so the one handler renders it."""

from __future__ import annotations

from kubeserve_common.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)

# One message for every failed login, whatever the reason, so nothing leaks about accounts.
INVALID_CREDENTIALS = "invalid email or password"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class LoginThrottled(RateLimited):
    """Too many failed logins for this account: the same generic message, plus Retry-After."""

    code = "invalid_credentials"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"{INVALID_CREDENTIALS}; too many failed attempts, retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            details={"retry_after": retry_after},
        )


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"

    def __init__(self) -> None:
        super().__init__("refresh token is invalid, expired or revoked; log in again")


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"

    def __init__(self) -> None:
        super().__init__("API key is invalid, expired or revoked")


class AccountUnavailable(Unauthorized):
    """The principal's user no longer exists or was disabled."""

    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("this account is disabled or no longer exists")


class EmailTaken(Conflict):
    code = "email_taken"

    def __init__(self) -> None:
        super().__init__("an account with this email already exists")


class WeakPassword(ValidationFailed):
    code = "weak_password"


class AdminOnly(Forbidden):
    def __init__(self) -> None:
        super().__init__("this action needs an administrator")


class InteractiveLoginRequired(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "API keys cannot manage accounts or API keys; use an access token from /auth/login"
        )


class ApiKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("API key not found")


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("user not found")


class TooManyApiKeys(Conflict):
    code = "too_many_api_keys"

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} active API keys per account; revoke one first")


class CannotDisableSelf(Conflict):
    def __init__(self) -> None:
        super().__init__("administrators cannot disable their own account")


class CannotDeleteSelf(Conflict):
    def __init__(self) -> None:
        super().__init__("administrators cannot delete their own account")
