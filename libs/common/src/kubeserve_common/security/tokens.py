"""Every JWT in KubeServe goes through this module (python-jose, algorithms always pinned).

- Access tokens: ES256, `kid` in the header, claims iss/aud/sub/exp/iat/typ(+role). Verified
  against keys we already know (a JWKS fetched from auth), never against a key named by the token.
- Internal principal tokens: HS256 with the shared internal secret, minted by the gateway for
  each proxied request and verified by internal services (`security.principal`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt
from jose.exceptions import JOSEError

ACCESS_ALGORITHMS = ["ES256"]  # pinned: nothing else is ever accepted for access tokens
INTERNAL_ALGORITHMS = ["HS256"]
ACCESS_TYP = "access"
INTERNAL_TYP = "internal"
INTERNAL_AUDIENCE = "kubeserve-internal"
INTERNAL_ISSUER = "kubeserve-gateway"
# Who issues access tokens (the auth service) and for whom (the platform behind the gateway).
ACCESS_ISSUER = "kubeserve-auth"
ACCESS_AUDIENCE = "kubeserve"
_REQUIRED = {
    "require_exp": True,
    "require_iat": True,
    "require_iss": True,
    "require_aud": True,
    "require_sub": True,
    "verify_signature": True,
    "verify_exp": True,
    "verify_iat": True,
    "verify_nbf": True,
    "verify_iss": True,
    "verify_aud": True,
    "leeway": 5,
}


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for something else."""


# -- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An ES256 private key with its key id (the RFC 7638 thumbprint of its public JWK)."""

    kid: str
    private_pem: str

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("signing keys must be EC P-256 private keys (ES256)")
        return cls(kid=_thumbprint(_public_jwk(key.public_key())), private_pem=pem)

    @classmethod
    def generate(cls) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls.from_pem(pem)

    def public_jwk(self) -> dict[str, str]:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return {**_public_jwk(key.public_key()), "kid": self.kid, "alg": "ES256", "use": "sig"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(public: Mapping[str, str]) -> str:
    # RFC 7638: the required members, lexicographic order, no whitespace.
    canonical = json.dumps(
        {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return _b64(hashlib.sha256(canonical.encode()).digest())


def jwks(keys: list[SigningKey]) -> dict[str, list[dict[str, str]]]:
    """The public JWKS document for `keys` (current first, then previous ones)."""
    return {"keys": [k.public_jwk() for k in keys]}


def verification_keys(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Usable ES256 public keys of a JWKS document by kid; anything else is ignored."""
    keys: dict[str, dict[str, str]] = {}
    for entry in document.get("keys", []) if isinstance(document, Mapping) else []:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("kty") != "EC" or entry.get("crv") != "P-256" or "d" in entry:
            continue
        if entry.get("alg", "ES256") != "ES256" or not isinstance(entry.get("kid"), str):
            continue
        try:
            jwk.construct(dict(entry), algorithm="ES256")
        except (JOSEError, ValueError, TypeError):
            continue
        keys[entry["kid"]] = {k: entry[k] for k in ("kty", "crv", "x", "y", "kid")}
    return keys


# -- access tokens ---------------------------------------------------------------------------


def issue_access_token(
    key: SigningKey,
    *,
    subject: str,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    claims: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    body = {
        **(claims or {}),
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TYP,
    }
    # jose is untyped: its results are typed where they enter our code.
    token: str = jwt.encode(body, key.private_pem, algorithm="ES256", headers={"kid": key.kid})
    return token


def token_kid(token: str) -> str:
    """The `kid` a token claims (unverified; only used to pick among keys we already trust)."""
    try:
        header = jwt.get_unverified_header(token)
    except JOSEError as exc:
        raise InvalidToken("malformed token") from exc
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("token has no key id")
    if header.get("alg") not in ACCESS_ALGORITHMS:
        raise InvalidToken("token algorithm not allowed")
    return kid


def verify_access_token(
    token: str, keys: Mapping[str, Mapping[str, str]], *, issuer: str, audience: str
) -> dict[str, Any]:
    """Claims of a valid access token; InvalidToken otherwise (unknown kid included)."""
    kid = token_kid(token)
    key = keys.get(kid)
    if key is None:
        raise InvalidToken("unknown key id")
    claims = _decoded(token, dict(key), ACCESS_ALGORITHMS, audience, issuer, "invalid token")
    if claims.get("typ") != ACCESS_TYP:
        raise InvalidToken("not an access token")
    return claims


def _decoded(
    token: str,
    key: str | dict[str, str],
    algorithms: list[str],
    audience: str,
    issuer: str,
    invalid: str,
) -> dict[str, Any]:
    """The claims of a token signed by `key` for `audience` by `issuer`, every required claim
    present; `InvalidToken` with jose's reason (or `invalid`) otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, audience=audience, issuer=issuer, options=_REQUIRED
        )
    except JOSEError as exc:
        raise InvalidToken(str(exc) or invalid) from exc
    return claims


# -- internal principal tokens ----------------------------------------------------------------


def issue_internal_token(
    secret: str, *, subject: str, claims: Mapping[str, Any], ttl_seconds: int = 60
) -> str:
    issued = int(time.time())
    body = {
        **claims,
        "sub": subject,
        "iss": INTERNAL_ISSUER,
        "aud": INTERNAL_AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "typ": INTERNAL_TYP,
    }
    token: str = jwt.encode(body, secret, algorithm="HS256")
    return token


def verify_internal_token(secret: str, token: str) -> dict[str, Any]:
    claims = _decoded(
        token,
        secret,
        INTERNAL_ALGORITHMS,
        INTERNAL_AUDIENCE,
        INTERNAL_ISSUER,
        "invalid internal token",
    )
    if claims.get("typ") != INTERNAL_TYP:
        raise InvalidToken("not an internal token")
    return claims
