"""The outbound sender's egress rules: every resolved address checked at connect time (a fake
resolver stands in for DNS), no redirects, a time limit and a cap on the body read; and a real
POST to a local receiver when private targets are allowed."""

from __future__ import annotations

import pytest

from adapters.webhooks.sender import BLOCKED, HttpxWebhookSender
from domain.webhooks import TargetPolicy
from tests.unit.webhooks.receiver import Answer, running_receiver

BODY = b'{"type":"webhook.ping"}'


def _resolver(answers: dict[str, list[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.7"], ["127.0.0.1"], ["93.184.216.34", "192.168.0.1"], ["::1"], []],
)
async def test_a_name_resolving_to_any_blocked_address_is_refused_at_connect(
    addresses: list[str],
) -> None:
    calls: list[str] = []
    sender = HttpxWebhookSender(
        TargetPolicy(), timeout=2, resolver=_resolver({"hooks.example.com": addresses}, calls)
    )
    try:
        result = await sender.send("https://hooks.example.com/h", {}, BODY)
    finally:
        await sender.aclose()
    assert calls == ["hooks.example.com"]
    assert (result.status, result.error) == (None, BLOCKED)
    assert not result.succeeded


async def test_a_name_that_rebinds_to_loopback_is_refused_when_it_connects() -> None:
    """The saved URL named a public host; at delivery time its DNS answers loopback (where a
    receiver listens): the connection is never made."""
    async with running_receiver() as receiver:
        sender = HttpxWebhookSender(
            TargetPolicy(allow_http=True),
            timeout=2,
            resolver=_resolver({"rebind.example.com": ["127.0.0.1"]}),
        )
        try:
            url = f"http://rebind.example.com:{receiver.port}/hook"
            TargetPolicy(allow_http=True).check_url(url)  # passes when saved
            result = await sender.send(url, {}, BODY)
        finally:
            await sender.aclose()
        assert result.error == BLOCKED
        assert receiver.received == []


def _local_sender(timeout: float = 2, cap: int = 1024) -> HttpxWebhookSender:
    return HttpxWebhookSender(
        TargetPolicy(allow_http=True, allow_private=True),
        timeout=timeout,
        max_body_bytes=cap,
        resolver=_resolver({"127.0.0.1": ["127.0.0.1"], "receiver.test": ["127.0.0.1"]}),
    )


async def test_a_post_reaches_the_receiver_with_headers_and_body() -> None:
    async with running_receiver() as receiver:
        sender = _local_sender()
        try:
            url = f"http://receiver.test:{receiver.port}/hook"
            result = await sender.send(url, {"webhook-id": "d1"}, BODY)
        finally:
            await sender.aclose()
        assert (result.status, result.error, result.body) == (200, None, "ok")
        assert result.succeeded
        [got] = receiver.received
        assert (got.method, got.path, got.body) == ("POST", "/hook", BODY)
        assert got.headers["webhook-id"] == "d1"
        assert got.headers["host"] == f"receiver.test:{receiver.port}"


async def test_redirects_are_not_followed() -> None:
    async with running_receiver() as receiver:
        receiver.answers = [Answer(302, b"", {"location": "http://127.0.0.1:1/elsewhere"})]
        sender = _local_sender()
        try:
            result = await sender.send(receiver.url, {}, BODY)
        finally:
            await sender.aclose()
        assert (result.status, result.error) == (302, "answered 302")
        assert len(receiver.received) == 1


async def test_the_answer_is_read_up_to_the_cap() -> None:
    async with running_receiver() as receiver:
        receiver.answers = [Answer(500, b"x" * 100_000)]
        sender = _local_sender(cap=64)
        try:
            result = await sender.send(receiver.url, {}, BODY)
        finally:
            await sender.aclose()
        assert result.status == 500
        assert result.body == "x" * 64


async def test_a_slow_receiver_times_out() -> None:
    async with running_receiver() as receiver:
        receiver.answers = [Answer(200, b"late", delay=1.0)]
        sender = _local_sender(timeout=0.2)
        try:
            result = await sender.send(receiver.url, {}, BODY)
        finally:
            await sender.aclose()
        assert (result.status, result.error) == (None, "timed out")
        assert not result.succeeded


async def test_a_refused_connection_is_an_error_not_an_exception() -> None:
    sender = _local_sender()
    try:
        result = await sender.send("http://127.0.0.1:1/hook", {}, BODY)
    finally:
        await sender.aclose()
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("connection failed")


async def test_the_system_resolver_is_the_default_and_is_checked() -> None:
    from adapters.webhooks.sender import system_resolver

    assert await system_resolver("127.0.0.1", 443) == ["127.0.0.1"]
    sender = HttpxWebhookSender(TargetPolicy(), timeout=2)
    try:
        result = await sender.send("https://localhost:1/hook", {}, BODY)
    finally:
        await sender.aclose()
    assert result.error == BLOCKED
