"""Webhooks: subscriptions to events, their deliveries and attempts, and every rule about them.

Rules here, used by every adapter: which event patterns a subscription may name and what they
match, which target URLs and addresses are allowed (checked when a webhook is saved and again
on every resolved address at connect time), how a delivery is signed (Standard Webhooks), what
an attempt's outcome does to its delivery (retry schedule, final failure) and to its webhook
(disabled after a 410, or after failing without a success for too long).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from domain.errors import FieldError, FieldErrors, Invalid
from domain.events import EventType
from domain.ports.feed import FeedItem
from domain.tasks import as_utc
from domain.text_fields import optional_text

PING_EVENT = "webhook.ping"
# Every event type a webhook may subscribe to (the change feed's types, and the ping).
EVENT_TYPES: frozenset[str] = frozenset({*(t.value for t in EventType), PING_EVENT})
EVENT_PREFIXES: frozenset[str] = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
MAX_PATTERNS = 30
URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 500
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
# After a rotation the previous secret also signs for this long.
SECRET_OVERLAP = timedelta(hours=24)
# What an attempt keeps of the receiver's answer.
RESPONSE_BODY_KEPT = 1024

EDITABLE_FIELDS = frozenset({"url", "events", "project_id", "description", "enabled"})
SERVER_FIELDS = frozenset(
    {"id", "disabled_reason", "created_at", "updated_at", "version", "secret"}
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A user's subscription. Secrets are kept only as ciphertext (the `Cipher` port's);
    `previous_secret` also signs until `previous_secret_expires_at` (a rotation's overlap).
    `failing_since` is the first failed attempt after the last success (None: not failing)."""

    id: str
    owner_id: str
    url: str
    events: tuple[str, ...]
    project_id: str | None
    description: str | None
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    def receives(self, event_type: str, project_id: str | None, occurred_at: datetime) -> bool:
        """Whether an event is for this webhook (enabled, pattern, project, and not older than
        the webhook); who may read the project is checked apart."""
        return (
            self.enabled
            and matches(self.events, event_type)
            and project_id is not None
            and (self.project_id is None or self.project_id == project_id)
            and occurred_at >= self.created_at
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The ciphertexts of the secrets that sign at `now`: the current one, and the previous
        one during its overlap."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is not None and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


@dataclass(frozen=True, slots=True)
class WebhookDraft:
    """What a client may give when creating a webhook; `new_webhook` checks every field."""

    url: object
    events: object
    project_id: object = None
    description: object = None
    enabled: object = True


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook. Its id is the `webhook-id` header of every attempt. `payload`
    is the exact body sent (JSON text). `attempts` counts the attempts of the retry series (a
    redelivery adds one). A claimed delivery has a lease (`leased_by` until `leased_until`)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    project_id: str | None
    payload: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    leased_by: str | None = None
    leased_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of a delivery: when, how long, the answer's status (None when none came), what
    went wrong (None on success) and the start of the answer's body."""

    id: str
    delivery_id: str
    attempted_at: datetime
    duration_ms: int
    response_status: int | None
    error: str | None
    response_body: str | None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What an outbound POST came to: the status (None when no answer came), an error text
    (None when an answer came), the start of the body, and how long it took."""

    status: int | None
    error: str | None
    body: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        """A 2xx answer, read in full within the time limit."""
        return self.status is not None and 200 <= self.status < 300 and self.error is None


@dataclass(frozen=True, slots=True)
class DeliveryRules:
    """The retry schedule (one wait per retry; attempts beyond it fail the delivery) and how
    long a webhook may fail without a success before it is disabled."""

    retry_schedule: tuple[timedelta, ...]
    disable_after: timedelta


# --- event patterns ------------------------------------------------------------------------------


def parse_event_patterns(value: object, field: str = "events") -> tuple[str, ...]:
    """1 to 30 patterns, each a known event type or a known prefix followed by `.*`
    (`task.*`); duplicates merged in first-seen order. Else `Invalid` naming each entry."""
    if not isinstance(value, list | tuple) or isinstance(value, str):
        raise Invalid.of(field, "must be a list of event types or prefixes like task.*")
    if not 1 <= len(value) <= MAX_PATTERNS:
        raise Invalid.of(field, f"must hold 1 to {MAX_PATTERNS} patterns")
    errors: list[FieldError] = []
    for index, pattern in enumerate(value):
        if not isinstance(pattern, str) or not _known_pattern(pattern):
            errors.append(
                FieldError(f"{field}[{index}]", "is not a known event type or prefix like task.*")
            )
    if errors:
        raise Invalid(f"{field}: unknown event patterns", errors)
    return tuple(dict.fromkeys(str(p) for p in value))


def _known_pattern(pattern: str) -> bool:
    if pattern.endswith(".*"):
        return pattern[:-2] in EVENT_PREFIXES
    return pattern in EVENT_TYPES


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an event type is named by a pattern (exactly, or by its `prefix.*`)."""
    return any(
        p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])) for p in patterns
    )


# --- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Where deliveries may go: https (and http when allowed), and only to global addresses
    unless private targets are allowed. Checked on the URL when a webhook is saved and on every
    resolved address when a delivery connects."""

    allow_http: bool = False
    allow_private: bool = False

    def check_url(self, value: object, field: str = "url") -> str:
        """The URL when it is acceptable; else `Invalid` on `field`. A host given as an address
        (or `localhost`) is checked here; a name is checked on its addresses at connect time."""
        if not isinstance(value, str) or not value:
            raise Invalid.of(field, "must be an absolute https URL")
        if len(value) > URL_MAX_LENGTH:
            raise Invalid.of(field, f"must be at most {URL_MAX_LENGTH} characters")
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise Invalid.of(field, "must not contain spaces or control characters")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise Invalid.of(field, "is not a valid URL") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise Invalid.of(field, "must use " + " or ".join(f"{s}://" for s in schemes))
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise Invalid.of(field, "must not contain user information")
        host = parts.hostname
        if not host:
            raise Invalid.of(field, "must name a host")
        if not self.allow_private and not self._host_allowed(host):
            raise Invalid.of(
                field, "names a loopback, private, link-local or otherwise non-global address"
            )
        return value

    def _host_allowed(self, host: str) -> bool:
        name = host.rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return True  # a name: its addresses are checked at connect time
        return self.address_allowed(name)

    def address_allowed(self, address: str) -> bool:
        """Whether a delivery may connect to this IP address."""
        if self.allow_private:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped or ip.sixtofour
            if mapped is not None:
                ip = mapped
        return ip.is_global and not ip.is_multicast


# --- secrets and signatures ----------------------------------------------------------------------


def secret_from_bytes(raw: bytes) -> str:
    """A webhook secret as shown to its owner: `whsec_` and the base64 of 32 random bytes."""
    if len(raw) != SECRET_BYTES:
        raise ValueError(f"a webhook secret is {SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def sign(secrets: Sequence[str], message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "<id>.<ts>.<body>">` for
    each secret (plaintext `whsec_...`), space-separated."""
    content = f"{message_id}.{timestamp}.{body}".encode()
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, content, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def delivery_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, message_id, timestamp, body),
    }


def payload(event_type: str, occurred_at: datetime, data: Mapping[str, object]) -> str:
    """The body of every attempt of a delivery: `{"type", "timestamp", "data"}` as JSON."""
    stamp = as_utc(occurred_at).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": stamp, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def event_payload(item: FeedItem) -> str:
    """The payload of a delivery of a feed event: built from the event alone, so an adapter
    that keeps the event may store the delivery without a copy and build it again."""
    return payload(item.type, item.occurred_at, item.body)


# --- building and changing webhooks --------------------------------------------------------------


def _description(value: object) -> str | None:
    return optional_text("description", value, DESCRIPTION_MAX_LENGTH)


def _enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid.of("enabled", "must be true or false")
    return value


def _project_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise Invalid.of("project_id", "must be a project id or null")
    return value


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_webhook(
    *,
    webhook_id: str,
    owner_id: str,
    draft: WebhookDraft,
    secret: str,
    policy: TargetPolicy,
    now: datetime,
) -> Webhook:
    """A new webhook at version 1 (`secret` is already encrypted). `Invalid` names every bad
    field; whether the caller may read `project_id` is the use case's check."""
    now = as_utc(now)
    errors = FieldErrors()
    url = errors.take("", policy.check_url, draft.url)
    no_events: tuple[str, ...] = ()
    events = errors.take(no_events, parse_event_patterns, draft.events)
    project_id = errors.take(None, _project_id, draft.project_id)
    description = errors.take(None, _description, draft.description)
    enabled = errors.take(True, _enabled, draft.enabled)
    errors.raise_if_any("invalid webhook fields")
    return Webhook(
        id=webhook_id,
        owner_id=owner_id,
        url=url,
        events=events,
        project_id=project_id,
        description=description,
        enabled=enabled,
        disabled_reason=None,
        secret=secret,
        previous_secret=None,
        previous_secret_expires_at=None,
        failing_since=None,
        created_at=now,
        updated_at=now,
        version=1,
    )


def apply_webhook_changes(
    webhook: Webhook, changes: Mapping[str, object], policy: TargetPolicy, now: datetime
) -> Webhook:
    """`webhook` with a JSON merge patch applied. Enabling a disabled webhook clears its
    `disabled_reason` and its failing streak. A patch that changes nothing returns `webhook`
    itself; else `version` goes up and `updated_at` becomes `now`."""
    now = as_utc(now)
    errors = FieldErrors()
    for key in changes:
        if key in SERVER_FIELDS:
            errors.errors.append(FieldError(key, "is set by the server and cannot be given"))
        elif key not in EDITABLE_FIELDS:
            errors.errors.append(FieldError(key, "is not a webhook field"))
    fields: dict[str, object] = {}
    if "url" in changes:
        fields["url"] = errors.take(webhook.url, policy.check_url, changes["url"])
    if "events" in changes:
        fields["events"] = errors.take(webhook.events, parse_event_patterns, changes["events"])
    if "project_id" in changes:
        fields["project_id"] = errors.take(webhook.project_id, _project_id, changes["project_id"])
    if "description" in changes:
        fields["description"] = errors.take(
            webhook.description, _description, changes["description"]
        )
    if "enabled" in changes:
        fields["enabled"] = errors.take(webhook.enabled, _enabled, changes["enabled"])
    errors.raise_if_any("invalid webhook fields")
    changed = replace(webhook, **fields)  # type: ignore[arg-type]
    if changed.enabled and not webhook.enabled:
        changed = replace(changed, disabled_reason=None, failing_since=None)
    if changed == webhook:
        return webhook
    return replace(changed, updated_at=now, version=webhook.version + 1)


def rotate_secret(webhook: Webhook, new_secret: str, now: datetime) -> Webhook:
    """The webhook signing with `new_secret` (encrypted) from now on, and with its current
    secret too for `SECRET_OVERLAP`."""
    now = as_utc(now)
    return replace(
        webhook,
        secret=new_secret,
        previous_secret=webhook.secret,
        previous_secret_expires_at=now + SECRET_OVERLAP,
        updated_at=now,
        version=webhook.version + 1,
    )


def disable(webhook: Webhook, reason: str, now: datetime) -> Webhook:
    return replace(
        webhook,
        enabled=False,
        disabled_reason=reason,
        updated_at=as_utc(now),
        version=webhook.version + 1,
    )


# --- deliveries ----------------------------------------------------------------------------------


def new_delivery(
    *,
    delivery_id: str,
    webhook_id: str,
    event_id: str,
    event_type: str,
    project_id: str | None,
    body: str,
    now: datetime,
) -> Delivery:
    """A pending delivery, due at once."""
    now = as_utc(now)
    return Delivery(
        id=delivery_id,
        webhook_id=webhook_id,
        event_id=event_id,
        event_type=event_type,
        project_id=project_id,
        payload=body,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def redeliver(delivery: Delivery, now: datetime) -> Delivery:
    """The delivery pending again, due at once: one more attempt with the same `webhook-id`
    (when it fails and the retry schedule is used up, the delivery is failed again)."""
    now = as_utc(now)
    return replace(
        delivery,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        updated_at=now,
    )


GONE_REASON = "the endpoint answered 410 Gone"


def failing_too_long_reason(rules: DeliveryRules) -> str:
    return f"no successful delivery for {_human(rules.disable_after)}"


def after_attempt(
    delivery: Delivery,
    webhook: Webhook,
    result: SendResult,
    rules: DeliveryRules,
    now: datetime,
) -> tuple[Delivery, Webhook]:
    """The delivery and the webhook after an attempt ended with `result` at `now`:
    - a 2xx: the delivery succeeded; the webhook's failing streak ends;
    - a 410: the delivery failed and the webhook is disabled at once;
    - anything else: a retry after the schedule's next wait, or, past the schedule, failed;
      the webhook is disabled once it has failed without a success for `disable_after`.
    The lease is released either way."""
    now = as_utc(now)
    attempts = delivery.attempts + 1
    released = replace(
        delivery, attempts=attempts, updated_at=now, leased_by=None, leased_until=None
    )
    if result.succeeded:
        done = replace(released, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)
        hook = webhook if webhook.failing_since is None else replace(webhook, failing_since=None)
        return done, hook
    failing_since = webhook.failing_since or now
    hook = (
        webhook
        if webhook.failing_since == failing_since
        else replace(webhook, failing_since=failing_since)
    )
    if result.status == 410:
        if hook.enabled:
            hook = disable(hook, GONE_REASON, now)
        return replace(released, status=DeliveryStatus.FAILED, next_attempt_at=None), hook
    if hook.enabled and now - failing_since >= rules.disable_after:
        hook = disable(hook, failing_too_long_reason(rules), now)
    if attempts <= len(rules.retry_schedule):
        retry_at = now + rules.retry_schedule[attempts - 1]
        return replace(released, next_attempt_at=retry_at), hook
    return replace(released, status=DeliveryStatus.FAILED, next_attempt_at=None), hook


# --- durations -----------------------------------------------------------------------------------

_DURATION = re.compile(r"([0-9]{1,9})(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`250ms`, `5s`, `5m`, `2h`, `5d` as a positive timedelta; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 5s, 5m, 2h or 5d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """A comma list of durations (`5s,5m,30m`); ValueError naming the bad entry."""
    parts = [p for p in (part.strip() for part in text.split(",")) if p]
    if not parts:
        raise ValueError("needs at least one duration")
    return tuple(parse_duration(p) for p in parts)


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit[:-1] if count == 1 else unit}"
    return f"{seconds} seconds"
