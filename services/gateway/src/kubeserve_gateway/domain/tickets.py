"""One-time tickets for the browser's EventSource, which cannot send an Authorization header:
a short-lived HMAC-signed claim (user, role, expiry, nonce) that the events stream accepts once.
Signed rather than stored, so any gateway replica can check it; "once" is per replica."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from kubeserve_common.security.principal import Principal


class InvalidTicket(Exception):
    """Malformed, forged, expired or already used."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TicketIssuer:
    secret: str
    ttl: float = 30.0
    max_remembered: int = 100_000
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        # A key of its own, so a ticket can never be replayed as any other signed value.
        self._key = hmac.new(self.secret.encode(), b"kubeserve-events-ticket", "sha256").digest()
        self._used: dict[str, float] = {}

    def issue(self, principal: Principal) -> tuple[str, float]:
        expires = self.clock() + self.ttl
        body = _b64(
            json.dumps(
                {
                    "u": str(principal.user_id),
                    "r": principal.role,
                    "e": expires,
                    "n": secrets.token_urlsafe(12),
                },
                separators=(",", ":"),
            ).encode()
        )
        return f"{body}.{self._sign(body)}", self.ttl

    def redeem(self, ticket: str) -> Principal:
        body, _, signature = ticket.partition(".")
        if not body or not signature or len(ticket) > 512:
            raise InvalidTicket("malformed ticket")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidTicket("bad ticket signature")
        try:
            claims = json.loads(_unb64(body))
            user_id, role, expires, nonce = (
                UUID(claims["u"]),
                claims["r"],
                float(claims["e"]),
                str(claims["n"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidTicket("malformed ticket") from exc
        now = self.clock()
        if expires < now:
            raise InvalidTicket("ticket expired")
        self._forget_expired(now)
        if nonce in self._used:
            raise InvalidTicket("ticket already used")
        if len(self._used) >= self.max_remembered:
            raise InvalidTicket("too many tickets in flight; retry shortly")
        self._used[nonce] = expires
        return Principal(user_id=user_id, role="admin" if role == "admin" else "user")

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def _forget_expired(self, now: float) -> None:
        if len(self._used) < 1024:
            expired = [n for n, e in self._used.items() if e < now]
        else:
            expired = [n for n, e in list(self._used.items()) if e < now]
        for nonce in expired:
            del self._used[nonce]
