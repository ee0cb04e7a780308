"""The served sender is built on its first delivery: none before, one for concurrent first sends,
and it delivers as the httpx sender does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import adapters.webhooks.lazy as lazy
from adapters.webhooks.lazy import LazyWebhookSender
from domain.webhooks import TargetPolicy
from tests.unit.webhooks.receiver import running_receiver

BODY = b'{"type":"webhook.ping"}'
LOCAL = TargetPolicy(allow_http=True, allow_private=True)


async def test_the_first_send_builds_the_sender_and_delivers() -> None:
    async with running_receiver() as receiver:
        sender = LazyWebhookSender(LOCAL, timeout=2)
        assert not sender.built
        try:
            result = await sender.send(receiver.url, {"webhook-id": "d1"}, BODY)
            assert sender.built
        finally:
            await sender.aclose()
        assert (result.status, result.error) == (200, None)
        [got] = receiver.received
        assert (got.method, got.body) == ("POST", BODY)
        assert got.headers["webhook-id"] == "d1"


async def test_the_sender_obeys_the_policy_it_was_given() -> None:
    sender = LazyWebhookSender(TargetPolicy(), timeout=2)
    try:
        result = await sender.send("https://127.0.0.1/hook", {}, BODY)
    finally:
        await sender.aclose()
    assert result.error == "blocked address"


async def test_concurrent_first_sends_share_one_build(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[tuple[TargetPolicy, float]] = []
    built = lazy._build

    def counted(policy: TargetPolicy, timeout: float) -> Any:
        builds.append((policy, timeout))
        return built(policy, timeout)

    monkeypatch.setattr(lazy, "_build", counted)
    async with running_receiver() as receiver:
        sender = LazyWebhookSender(LOCAL, timeout=3)
        try:
            results = await asyncio.gather(*(sender.send(receiver.url, {}, BODY) for _ in range(5)))
        finally:
            await sender.aclose()
        assert builds == [(LOCAL, 3)]
        assert [r.status for r in results] == [200] * 5
        assert len(receiver.received) == 5


async def test_closing_an_unused_sender_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(policy: TargetPolicy, timeout: float) -> Any:
        raise AssertionError("built")

    monkeypatch.setattr(lazy, "_build", refuse)
    sender = LazyWebhookSender(LOCAL, timeout=2)
    await sender.aclose()
    assert not sender.built
