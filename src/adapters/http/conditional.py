"""Entity tags and conditional requests (RFC 9110 §13): `ETag`, `If-Match`, `If-None-Match`.

ETags are strong and name the resource and its version (`"<id>.<version>"`), so `If-Match` maps
to a use case's optimistic-concurrency check without another read.
"""

from __future__ import annotations


def etag_of(resource_id: str, version: int) -> str:
    return f'"{resource_id}.{version}"'


def _tags(header: str, *, weak: bool) -> list[str]:
    """Entity tags of a header; weak ones (W/) count only for weak comparison (If-None-Match)."""
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if weak:
        return [t.removeprefix("W/") for t in tags]
    return [t for t in tags if not t.startswith("W/")]


def expected_version(if_match: str | None, resource_id: str) -> int | None:
    """The version an `If-Match` asks for: None when absent or `*`; -1 (always stale) when it
    names no version of this resource."""
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in _tags(if_match, weak=False):
        name, _, version = tag.strip('"').rpartition(".")
        if name == resource_id and version.isdigit():
            return int(version)
    return -1


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` matches the current `etag` (`*` matches any)."""
    return if_none_match is not None and (
        if_none_match.strip() == "*" or etag in _tags(if_none_match, weak=True)
    )
