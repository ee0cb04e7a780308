"""BufferedGauge: per-request gauges written through at most once per interval."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from adapters.http.metrics import BufferedGauge


def gauge() -> tuple[Gauge, CollectorRegistry]:
    registry = CollectorRegistry()
    return Gauge("probe", "a probe", registry=registry), registry


def value(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("probe")


def test_outside_an_event_loop_it_writes_at_once() -> None:
    real, registry = gauge()
    buffered = BufferedGauge(real)
    buffered.inc()
    buffered.inc()
    assert value(registry) == 2
    buffered.dec()
    buffered.set(7)
    assert value(registry) == 7


def test_in_a_loop_changes_are_written_once_per_interval_with_the_latest_value() -> None:
    real, registry = gauge()
    buffered = BufferedGauge(real, interval=0.01)
    writes: list[float] = []
    original_set = real.set

    def spy(amount: float) -> None:
        writes.append(amount)
        original_set(amount)

    real.set = spy  # type: ignore[method-assign,assignment]

    async def burst() -> None:
        for _ in range(50):
            buffered.inc()
        assert value(registry) == 0  # not yet written
        buffered.dec(20)
        await asyncio.sleep(0.05)
        assert value(registry) == 30
        for _ in range(30):
            buffered.dec()
        await asyncio.sleep(0.05)

    asyncio.run(burst())
    assert writes == [30, 0]
    assert buffered.value == 0


def test_a_timer_left_on_a_closed_loop_does_not_stop_later_writes() -> None:
    real, registry = gauge()
    buffered = BufferedGauge(real, interval=0.02)

    async def change(to: float) -> None:
        buffered.set(to)

    asyncio.run(change(3))  # the loop closes before its timer fires
    assert value(registry) == 0

    async def change_and_wait(to: float) -> None:
        buffered.set(to)
        await asyncio.sleep(0.1)

    asyncio.run(change_and_wait(4))
    assert value(registry) == 4


def test_the_exposition_names_its_charset_once() -> None:
    from litestar.testing import TestClient
    from prometheus_client import CONTENT_TYPE_LATEST

    from app.factory import create_app
    from app.settings import load_settings

    settings = load_settings(environ={"DATABASE_URL": "memory://"}, dotenv_path=None)
    with TestClient(create_app(settings)) as client:
        content_type = client.get("/metrics").headers["content-type"]
    assert content_type.count("charset") == 1
    assert content_type == CONTENT_TYPE_LATEST
