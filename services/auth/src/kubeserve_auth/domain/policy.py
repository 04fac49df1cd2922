"""Rules on what users type: email normalisation and the password policy. Pure functions."""

from __future__ import annotations

import re
import unicodedata

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
EMAIL_MAX_LENGTH = 254

# A deliberately plain address check (no DNS, no special-use-domain refusals, which would break
# self-hosted domains such as `corp.local`): printable ASCII local part, dotted DNS labels.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def normalise_email(raw: str) -> str:
    """The canonical (lower-case) form of an email address; ValueError naming the problem."""
    email = raw.strip()
    if any(unicodedata.category(ch).startswith("C") or ch.isspace() for ch in email):
        raise ValueError("email must not contain spaces or control characters")
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValueError(f"email must be at most {EMAIL_MAX_LENGTH} characters")
    local, sep, domain = email.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError("email must look like name@example.com")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("the part of the email before @ is not valid")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("the domain of the email is not valid")
    return email.lower()


def password_problems(password: str, email: str | None = None) -> list[str]:
    """What is wrong with a new password (empty list: acceptable)."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"must be at most {PASSWORD_MAX_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in password):
        problems.append("must not contain control characters")
    if password and _character_classes(password) < 2:
        problems.append(
            "must mix at least two kinds of characters (lower-case, upper-case, digits, symbols)"
        )
    if email and password.strip().lower() in {email.lower(), email.split("@", 1)[0].lower()}:
        problems.append("must not be your email address")
    return problems


def _character_classes(password: str) -> int:
    classes = set()
    for ch in password:
        if ch.islower():
            classes.add("lower")
        elif ch.isupper():
            classes.add("upper")
        elif ch.isdigit():
            classes.add("digit")
        else:
            classes.add("other")
    return len(classes)
