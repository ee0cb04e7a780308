"""The domain's error hierarchy. Adapters map these to transport answers (HTTP problem+json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending input field and what is wrong with it."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    title = "Domain error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    title = "Not found"


class Conflict(DomainError):
    title = "Conflict"


class LimitReached(Conflict):
    """A per-account cap is reached (HTTP 409): the request is fine, the account is full."""

    title = "Limit reached"


class Forbidden(DomainError):
    """The caller is known but may not do this (HTTP 403)."""

    title = "Forbidden"


class Unauthenticated(DomainError):
    """Missing, unknown, expired or revoked credentials (HTTP 401)."""

    title = "Unauthorized"


class PreconditionFailed(DomainError):
    """An optimistic-concurrency precondition (version / ETag) does not hold (HTTP 412)."""

    title = "Precondition failed"


class CursorExpired(DomainError):
    """A feed position older than the oldest event kept (HTTP 410): start again from the
    oldest kept event, or from now."""

    title = "Cursor expired"


class RateLimited(DomainError):
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency needed to answer safely is down (HTTP 503)."""

    title = "Service unavailable"


@dataclass
class Invalid(DomainError):
    """Input that parses but breaks a rule (HTTP 422); names each offending field."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    title = "Validation failed"

    def __post_init__(self) -> None:
        Exception.__init__(self, self.detail)

    @classmethod
    def of(cls, field_name: str, message: str) -> Invalid:
        return cls(f"{field_name}: {message}", [FieldError(field_name, message)])


class FieldRejected(Exception):
    """Raised by a field parser: the offending entries (e.g. `labels[3]`), for `FieldErrors`."""

    def __init__(self, *errors: FieldError) -> None:
        super().__init__()
        self.errors = errors


class FieldErrors:
    """Every offending field of one input, collected before one `Invalid` names them all."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def take[T](self, fallback: T, parse: Callable[..., T], *args: object) -> T:
        """`parse(*args)`; when it rejects the input (`FieldRejected` or `Invalid`), keep its
        field errors and return `fallback`."""
        try:
            return parse(*args)
        except (FieldRejected, Invalid) as rejected:
            self.errors.extend(rejected.errors)
            return fallback

    def raise_if_any(self, heading: str | None = None) -> None:
        """Raise one `Invalid` if anything was rejected. Its detail is `heading` followed by the
        offending fields (each once, in order), or without a heading every `field: message`."""
        errors = self.errors
        if not errors:
            return
        if heading is None:
            raise Invalid("; ".join(f"{e.field}: {e.message}" for e in errors), list(errors))
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        raise Invalid(f"{heading}: {fields}", list(errors))
