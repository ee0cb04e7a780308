"""The comment entity: a note by a project member on a task, and the rule for its body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.errors import Invalid
from domain.tasks import as_utc

BODY_MAX_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment; immutable once written (deleted, never edited)."""

    id: str
    task_id: str
    author_id: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CommentPosition:
    """A place in a task's comments, oldest first: the keyset (created_at, id) of the last one
    seen. Adapters list `WHERE (created_at, id) > (position)` ORDER BY created_at, id."""

    created_at: datetime
    id: str

    @classmethod
    def of(cls, comment: Comment) -> CommentPosition:
        return cls(comment.created_at, comment.id)


def validate_body(value: object) -> str:
    """The body as given (not trimmed): a string of 1-10,000 characters without NUL; else
    `Invalid` on `body`."""
    if not isinstance(value, str):
        raise Invalid.of("body", "must be a string")
    if not value:
        raise Invalid.of("body", "must not be empty")
    if len(value) > BODY_MAX_LENGTH:
        raise Invalid.of("body", f"must be at most {BODY_MAX_LENGTH} characters")
    if "\x00" in value:
        raise Invalid.of("body", "must not contain NUL characters")
    return value


def new_comment(
    *, comment_id: str, task_id: str, author_id: str, body: object, now: datetime
) -> Comment:
    return Comment(comment_id, task_id, author_id, validate_body(body), as_utc(now))
