"""The user aggregate: the entity and the rules for e-mail, password and display name."""

from __future__ import annotations

import unicodedata
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Invalid
from domain.names import display_name

EMAIL_MAX_LENGTH = 254
EMAIL_LOCAL_MAX_LENGTH = 64
DOMAIN_LABEL_MAX_LENGTH = 63
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
NAME_MAX_LENGTH = 200

# Unicode categories never accepted in an e-mail address: control, format (zero-width and bidi
# marks), surrogates, private use, unassigned, and every kind of separator (spaces, line breaks).
_FORBIDDEN_EMAIL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
# ASCII characters RFC 5322 only allows inside a quoted local part; quoted local parts are refused.
_FORBIDDEN_EMAIL_ASCII = frozenset('"(),:;<>[\\]@')


@dataclass(frozen=True, slots=True)
class User:
    """A person who owns tasks and API keys. `email` is canonical (see `normalize_email`)."""

    id: str
    email: str
    name: str | None
    password_hash: str
    created_at: datetime

    @property
    def email_key(self) -> str:
        """The case-insensitive uniqueness key of this user's e-mail."""
        return email_key(self.email)


def normalize_email(raw: str) -> str:
    """The canonical form of an e-mail address (trimmed, NFC, lower-case domain).

    Raises `Invalid` on field `email` for anything that does not look like `local@domain` or
    that carries invisible characters (control, zero-width, bidi marks, whitespace inside).
    """
    email = unicodedata.normalize("NFC", raw.strip())
    if not email:
        raise Invalid.of("email", "must not be empty")
    if len(email) > EMAIL_MAX_LENGTH:
        raise Invalid.of("email", f"must be at most {EMAIL_MAX_LENGTH} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN_EMAIL_CATEGORIES for ch in email):
        raise Invalid.of("email", "must not contain whitespace or invisible characters")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise Invalid.of("email", "must look like name@example.com")
    if any(ch in _FORBIDDEN_EMAIL_ASCII for ch in local):
        raise Invalid.of("email", "has a character not allowed before the @")
    if len(local) > EMAIL_LOCAL_MAX_LENGTH:
        raise Invalid.of("email", f"the part before @ must be at most {EMAIL_LOCAL_MAX_LENGTH}")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise Invalid.of("email", "the part before @ has a misplaced dot")
    domain = domain.lower()
    if not all(_is_domain_label(label) for label in domain.split(".")):
        raise Invalid.of("email", "has an invalid domain")
    return f"{local}@{domain}"


def _is_domain_label(label: str) -> bool:
    return (
        0 < len(label) <= DOMAIN_LABEL_MAX_LENGTH
        and not label.startswith("-")
        and not label.endswith("-")
        and all(ch == "-" or ch.isalnum() for ch in label)
    )


def email_key(email: str) -> str:
    """The key that makes e-mail uniqueness case-insensitive: NFC of the case-folded address.

    Store it (or index it) where uniqueness is enforced; `lower()` in SQL is not the same thing
    (SQLite's lower() only folds ASCII).
    """
    return unicodedata.normalize("NFC", email.casefold())


def normalize_password(raw: str) -> str:
    """The form a password is hashed and checked in: Unicode NFKC, so that the same password
    typed with composed or decomposed accents, or full-width characters, is the same password.
    ASCII is unchanged, so hashes of ASCII passwords made before normalisation stay valid."""
    return unicodedata.normalize("NFKC", raw)


def validate_password(password: str, common: Container[str] = frozenset()) -> str:
    """`password` in NFKC when that is 8-128 characters and not one of the `common` passwords
    (compared in lower case); else raise `Invalid` on `password`."""
    normalized = normalize_password(password)
    if len(normalized) < PASSWORD_MIN_LENGTH:
        raise Invalid.of("password", f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(normalized) > PASSWORD_MAX_LENGTH:
        raise Invalid.of("password", f"must be at most {PASSWORD_MAX_LENGTH} characters")
    if normalized.lower() in common:
        raise Invalid.of("password", "is one of the most common passwords; choose another")
    return normalized


def normalize_name(raw: str | None) -> str | None:
    """A display name of 1-200 characters (`display_name`), or None when none is given."""
    if raw is None:
        return None
    return display_name(
        raw, NAME_MAX_LENGTH, blank="must not be blank (omit it or send null instead)"
    )
