"""Where the JWT signing keys come from: settings (PEM) or, in dev mode only, a key generated
once and kept (0600) under `<home>/auth/jwt-signing-key.pem` so tokens survive restarts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.security.secrets import home_secret
from kubeserve_common.security.tokens import SigningKey, jwks

from kubeserve_auth.settings import AuthSettings, MissingSigningKeyError

log = logging.getLogger(__name__)

DEV_KEY_FILE = Path("auth") / "jwt-signing-key.pem"


@dataclass(frozen=True)
class KeyRing:
    """The key signing new tokens, and the previous one still published for verification."""

    current: SigningKey
    previous: SigningKey | None = None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        keys = [self.current]
        if self.previous is not None and self.previous.kid != self.current.kid:
            keys.append(self.previous)
        return jwks(keys)


def load_key_ring(settings: AuthSettings) -> KeyRing:
    current = _configured(settings.jwt_private_key, "KUBESERVE_JWT_PRIVATE_KEY")
    if current is None:
        if not settings.dev_mode:
            raise MissingSigningKeyError("KUBESERVE_JWT_PRIVATE_KEY is required outside dev mode")
        current = _dev_key(settings.home / DEV_KEY_FILE)
    previous = _configured(settings.jwt_previous_private_key, "KUBESERVE_JWT_PREVIOUS_PRIVATE_KEY")
    return KeyRing(current, previous)


def _configured(value: object, variable: str) -> SigningKey | None:
    secret = getattr(value, "get_secret_value", lambda: None)()
    if not secret or not secret.strip():
        return None
    try:
        return SigningKey.from_pem(secret.strip().replace("\\n", "\n") + "\n")
    except (ValueError, TypeError) as exc:
        # Never echo the key itself.
        raise ValueError(f"{variable} is not a usable EC P-256 private key in PEM: {exc}") from None


def _dev_key(path: Path) -> SigningKey:
    generated: list[SigningKey] = []

    def generate() -> str:
        generated.append(SigningKey.generate())
        return generated[0].private_pem

    key = SigningKey.from_pem(home_secret(path, generate))
    if generated and generated[0].kid == key.kid:
        log.warning("generated a JWT signing key", extra={"path": str(path)})
    return key
