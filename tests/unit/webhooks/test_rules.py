"""The webhook rules: patterns, targets, signatures, and what an attempt's outcome does."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta

import pytest

from domain.errors import Invalid
from domain.webhooks import (
    GONE_REASON,
    DeliveryStatus,
    SendResult,
    TargetPolicy,
    WebhookDraft,
    after_attempt,
    apply_webhook_changes,
    matches,
    new_delivery,
    new_webhook,
    parse_event_patterns,
    parse_schedule,
    rotate_secret,
    sign,
)
from tests.unit.tasks.fakes import T0
from tests.unit.webhooks.support import RULES, URL


def _hook(**draft: object):  # type: ignore[no-untyped-def]
    fields = {"url": URL, "events": ["task.*"], **draft}
    return new_webhook(
        webhook_id="h1",
        owner_id="u1",
        draft=WebhookDraft(**fields),  # type: ignore[arg-type]
        secret="cipher",
        policy=TargetPolicy(),
        now=T0,
    )


def _fields(exc: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_patterns_take_known_types_and_prefixes_and_merge_duplicates() -> None:
    assert parse_event_patterns(["task.*", "comment.created", "task.*"]) == (
        "task.*",
        "comment.created",
    )
    assert matches(("task.*",), "task.updated")
    assert not matches(("task.*",), "taskish.updated")
    assert matches(("member.added",), "member.added")
    assert not matches(("member.added",), "member.removed")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "events"),
        (["task.*"] * 31, "events"),
        ("task.*", "events"),
        (["task.nope"], "events[0]"),
        (["task.created", "widget.*"], "events[1]"),
        (["*"], "events[0]"),
        ([3], "events[0]"),
    ],
)
def test_unknown_or_too_many_patterns_are_invalid(value: object, field: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_event_patterns(value)
    assert _fields(exc) == [field]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https://user:pw@hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost/x",
        "https://api.localhost/x",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
        "https://hooks.example.com:99999/x",
        "https://" + "a" * 2000 + ".com/",
        "https:///nohost",
        "",
        None,
    ],
)
def test_bad_targets_are_invalid_on_url(url: object) -> None:
    with pytest.raises(Invalid) as exc:
        TargetPolicy().check_url(url)
    assert _fields(exc) == ["url"]


def test_http_and_private_targets_when_allowed() -> None:
    assert TargetPolicy(allow_http=True).check_url("http://hooks.example.com/") == (
        "http://hooks.example.com/"
    )
    assert TargetPolicy(allow_private=True).check_url("https://127.0.0.1:8443/x")
    assert TargetPolicy().check_url("https://93.184.216.34/x")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("172.16.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("not an address", False),
    ],
)
def test_address_rule(address: str, allowed: bool) -> None:
    assert TargetPolicy().address_allowed(address) is allowed
    assert TargetPolicy(allow_private=True).address_allowed(address) is True


def test_a_new_webhook_names_every_bad_field() -> None:
    with pytest.raises(Invalid) as exc:
        _hook(url="http://x", events=[], project_id="nope", description=5, enabled="yes")
    assert _fields(exc) == ["url", "events", "project_id", "description", "enabled"]


def test_merge_patch_changes_bumps_and_refuses_server_fields() -> None:
    hook = _hook()
    same = apply_webhook_changes(hook, {"url": URL}, TargetPolicy(), T0)
    assert same is hook
    changed = apply_webhook_changes(hook, {"events": ["comment.*"]}, TargetPolicy(), T0)
    assert changed.events == ("comment.*",)
    assert changed.version == 2
    with pytest.raises(Invalid) as exc:
        apply_webhook_changes(hook, {"secret": "x", "color": 1}, TargetPolicy(), T0)
    assert _fields(exc) == ["secret", "color"]


def test_enabling_clears_the_disabled_reason_and_the_failing_streak() -> None:
    hook = replace(_hook(), enabled=False, disabled_reason="gone", failing_since=T0)
    enabled = apply_webhook_changes(hook, {"enabled": True}, TargetPolicy(), T0)
    assert enabled.enabled
    assert enabled.disabled_reason is None
    assert enabled.failing_since is None


def test_the_signature_is_standard_webhooks_hmac() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    ).decode()
    assert sign([secret], "msg_1", 1700000000, "{}") == f"v1,{expected}"
    assert sign([secret, secret], "msg_1", 1700000000, "{}") == f"v1,{expected} v1,{expected}"


def test_the_previous_secret_signs_for_24_hours_after_a_rotation() -> None:
    rotated = rotate_secret(_hook(), "new", T0)
    assert rotated.signing_secrets(T0 + timedelta(hours=23)) == ["new", "cipher"]
    assert rotated.signing_secrets(T0 + timedelta(hours=24)) == ["new"]


def _delivery():  # type: ignore[no-untyped-def]
    return new_delivery(
        delivery_id="d1",
        webhook_id="h1",
        event_id="e1",
        event_type="task.created",
        project_id="p1",
        body="{}",
        now=T0,
    )


def test_failures_follow_the_schedule_then_fail() -> None:
    hook, delivery = _hook(), _delivery()
    failed = SendResult(500, "answered 500", "", 5)
    now = T0
    for wait in RULES.retry_schedule:
        delivery, hook = after_attempt(delivery, hook, failed, RULES, now)
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.next_attempt_at == now + wait
        now = delivery.next_attempt_at
    delivery, hook = after_attempt(delivery, replace(hook, failing_since=now), failed, RULES, now)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 8


def test_a_2xx_cut_short_is_a_failure() -> None:
    delivery, _ = after_attempt(
        _delivery(), _hook(), SendResult(200, "answer cut short: timed out", None, 9), RULES, T0
    )
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 1


def test_410_disables_at_once_and_success_ends_the_streak() -> None:
    delivery, hook = after_attempt(_delivery(), _hook(), SendResult(410, "x", "", 1), RULES, T0)
    assert delivery.status is DeliveryStatus.FAILED
    assert not hook.enabled
    assert hook.disabled_reason == GONE_REASON
    _, healthy = after_attempt(
        _delivery(), replace(_hook(), failing_since=T0), SendResult(204, None, "", 1), RULES, T0
    )
    assert healthy.failing_since is None


def test_failing_for_the_disable_window_disables() -> None:
    failing = replace(_hook(), failing_since=T0)
    failed = SendResult(None, "timed out", None, 15000)
    _, still = after_attempt(_delivery(), failing, failed, RULES, T0 + timedelta(days=4))
    assert still.enabled
    _, off = after_attempt(_delivery(), failing, failed, RULES, T0 + timedelta(days=5))
    assert not off.enabled
    assert off.disabled_reason == "no successful delivery for 5 days"


def test_schedule_parsing() -> None:
    assert parse_schedule("5s, 5m,2h,1d") == (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(hours=2),
        timedelta(days=1),
    )
    for bad in ("", "5", "0s", "5x", "5s,,x"):
        with pytest.raises(ValueError, match="duration"):
            parse_schedule(bad)
