"""The logging set-up's processors: request context, domain events and the JSON line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from adapters.events.log import DOMAIN_EVENT, LoggingEventPublisher
from adapters.http import logcontext
from adapters.http.logcontext import REQUEST_LOG, RequestLog, bind_request_log
from app.logs import (
    JsonAccessLine,
    configure_logging,
    fold_domain_event,
    fold_into_request,
    merge_request_context,
    render_json_line,
    utc_timestamp,
)
from app.settings import load_settings
from domain.events import TaskEvent, TaskEventName


def test_the_request_context_is_merged_and_the_call_keys_win() -> None:
    token = REQUEST_LOG.set(RequestLog("rid-1"))
    try:
        bind_request_log(principal="api_key:k", user_id="u")
        merged = merge_request_context(None, "info", {"event": "x", "user_id": "explicit"})
    finally:
        REQUEST_LOG.reset(token)
    assert merged == {
        "event": "x",
        "request_id": "rid-1",
        "principal": "api_key:k",
        "user_id": "explicit",
    }


def test_outside_a_request_nothing_is_merged_or_bound() -> None:
    bind_request_log(principal="nobody")  # no request: ignored
    assert merge_request_context(None, "info", {"event": "x"}) == {"event": "x"}


def test_a_domain_event_is_folded_only_into_an_open_request() -> None:
    context = RequestLog("rid-2")
    token = REQUEST_LOG.set(context)
    try:
        with pytest.raises(structlog.DropEvent):
            fold_domain_event(None, "info", {"event": DOMAIN_EVENT, "name": "task.created"})
        other = {"event": "something else"}
        assert fold_domain_event(None, "info", other) is other
        context.open = False  # its access line is written: later events are lines of their own
        late = {"event": DOMAIN_EVENT, "name": "task.deleted"}
        assert fold_domain_event(None, "info", late) is late
    finally:
        REQUEST_LOG.reset(token)
    assert context.events == [{"name": "task.created"}]


@pytest.fixture
def json_logging() -> Iterator[None]:
    """The production JSON set-up for one test, the previous configuration restored after."""
    saved = structlog.get_config()
    configure_logging(
        load_settings(environ={"DATABASE_URL": "memory://", "LOG_FORMAT": "json"}, dotenv_path=None)
    )
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("json_logging")
def test_the_publisher_folds_its_events_into_an_open_request_and_logs_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher = LoggingEventPublisher(fold=fold_into_request)
    occurred = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    context = RequestLog("rid-3")
    token = REQUEST_LOG.set(context)
    try:
        capsys.readouterr()
        for name, version in ((TaskEventName.CREATED, 1), (TaskEventName.UPDATED, 2)):
            asyncio.run(publisher.publish(TaskEvent(name, "t-1", "u-1", occurred, version)))
        context.open = False  # the access line is written: a late event is a line of its own
        asyncio.run(publisher.publish(TaskEvent(TaskEventName.DELETED, "t-1", "u-1", occurred, 2)))
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    finally:
        REQUEST_LOG.reset(token)
    assert [(e["name"], e["version"]) for e in context.events or []] == [
        ("task.created", 1),
        ("task.updated", 2),
    ]
    assert context.events is not None
    assert context.events[0] == {
        "name": "task.created",
        "task_id": "t-1",
        "owner_id": "u-1",
        "version": 1,
        "occurred_at": "2026-05-01T12:00:00+00:00",
    }
    assert [(x["event"], x["name"]) for x in lines] == [(DOMAIN_EVENT, "task.deleted")]


def test_the_json_line_has_level_utc_timestamp_and_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        line = json.loads(render_json_line(None, "exception", {"event": "e", "exc_info": exc}))
    assert line["level"] == "error"
    assert "ValueError: boom" in line["exception"]
    assert "exc_info" not in line
    assert line["timestamp"].endswith("Z")
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None
    warned = json.loads(
        render_json_line(None, "warn", {"event": "w", "when": datetime(2026, 1, 1)})
    )
    assert (warned["level"], warned["when"]) == ("warning", "2026-01-01T00:00:00")


@pytest.mark.usefixtures("json_logging")
def test_outside_a_request_a_domain_event_is_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    occurred = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    event = TaskEvent(TaskEventName.CREATED, "t-1", "u-1", occurred, 1)
    asyncio.run(LoggingEventPublisher().publish(event))
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert line == {
        "event": DOMAIN_EVENT,
        "name": "task.created",
        "task_id": "t-1",
        "owner_id": "u-1",
        "version": 1,
        "occurred_at": "2026-05-01T12:00:00+00:00",
        "level": "info",
        "timestamp": line["timestamp"],
    }


def configure(log_format: str, level: str = "INFO") -> None:
    configure_logging(
        load_settings(
            environ={"DATABASE_URL": "memory://", "LOG_FORMAT": log_format, "LOG_LEVEL": level},
            dotenv_path=None,
        )
    )
    structlog.configure(cache_logger_on_first_use=False)


@pytest.fixture
def fresh_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore structlog's configuration and the access-line writer after the test; the reference
    access logger binds afresh (an earlier test may have cached another configuration in it)."""
    saved = structlog.get_config()
    monkeypatch.setattr(logcontext, "_access_log", structlog.get_logger("taskhub.access"))
    monkeypatch.setattr(logcontext, "write_access_line", logcontext.write_access_line)
    yield
    structlog.configure(**saved)


ACCESS_CASES = [
    # (request fields, domain events)
    ({}, None),
    ({"principal": "api_key:k", "user_id": "u", "actor": "api_key:k"}, None),
    ({"user_id": "u", "principal": "session:s"}, [{"name": "task.created", "version": 1}]),
    # fields that clash with the call's keys: the call's values and places win
    ({"status": 999, "event": "x", "client": "c", "when": datetime(2026, 1, 1)}, []),
]

_TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')


def access_lines(
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, object],
    events: list[dict[str, object]] | None,
) -> tuple[str, str]:
    """The access line for one request as the structlog path writes it and as the JSON writer."""
    context = RequestLog("rid-7")
    context.fields.update(fields)
    context.events = events
    context.open = False
    args = (context, "GET", "/v1/tasks/{task_id}", "/v1/tasks/t-1", 200, 12.35, "10.0.0.1")
    token = REQUEST_LOG.set(context)
    try:
        capsys.readouterr()
        logcontext.structlog_access_line(*args)
        reference = capsys.readouterr().err
        logcontext.write_access_line(*args)
        fast = capsys.readouterr().err
    finally:
        REQUEST_LOG.reset(token)
    return reference, fast


@pytest.mark.parametrize(("fields", "events"), ACCESS_CASES)
@pytest.mark.usefixtures("fresh_logging")
def test_the_json_access_line_is_the_structlog_line_byte_for_byte(
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, object],
    events: list[dict[str, object]] | None,
) -> None:
    configure("json")
    assert isinstance(logcontext.write_access_line, JsonAccessLine)
    reference, fast = access_lines(capsys, fields, events)
    assert reference.endswith("\n")
    assert reference.count("\n") == 1
    assert _TIMESTAMP.sub("T", fast) == _TIMESTAMP.sub("T", reference)
    line = json.loads(fast)
    assert list(line)[:7] == [
        "method",
        "route",
        "path",
        "status",
        "duration_ms",
        "client",
        "principal",
    ]
    assert list(line)[-2:] == ["level", "timestamp"]
    assert (line["status"], line["event"], line["request_id"]) == (200, "request", "rid-7")


@pytest.mark.usefixtures("fresh_logging")
def test_the_console_access_line_is_structlogs(capsys: pytest.CaptureFixture[str]) -> None:
    configure("console")
    assert logcontext.write_access_line is logcontext.structlog_access_line
    reference, fast = access_lines(capsys, {"user_id": "u"}, None)
    assert "user_id" in reference
    assert fast.split(" ", 1)[1] == reference.split(" ", 1)[1]  # all but the timestamp


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.usefixtures("fresh_logging")
def test_above_info_there_is_no_access_line(
    capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    configure(log_format, level="WARNING")
    reference, fast = access_lines(capsys, {}, None)
    assert (reference, fast) == ("", "")


@pytest.mark.parametrize(
    "nanos",
    [
        1_779_420_873_340_782_123,
        1_779_420_873_000_000_999,  # a zero fraction: isoformat() writes none
        1_779_420_873_000_001_000,
        1_779_420_874_999_999_999,
        1_779_420_873_999_999_000,  # the same second as the first (cached prefix)
    ],
)
def test_the_timestamp_is_datetimes_isoformat_with_z(
    monkeypatch: pytest.MonkeyPatch, nanos: int
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: nanos)
    expected = datetime.fromtimestamp(nanos // 1_000_000_000, UTC).replace(
        microsecond=nanos % 1_000_000_000 // 1000
    )
    assert utc_timestamp() == expected.isoformat().replace("+00:00", "Z")


def test_the_timestamp_follows_the_clock() -> None:
    before = datetime.now(UTC)
    stamp = datetime.fromisoformat(utc_timestamp())
    assert before <= stamp <= datetime.now(UTC)


def test_the_mcp_sdks_line_per_request_is_left_out_unless_debugging(
    fresh_logging: None,
) -> None:
    """The SDK's stateless transport logs "Terminating session" at INFO for every request, as
    plain text: the access line already records the request."""
    sdk = logging.getLogger("mcp.server.streamable_http")
    saved = sdk.level
    try:
        configure("json")
        assert not sdk.isEnabledFor(logging.INFO)
        assert sdk.isEnabledFor(logging.WARNING)
        configure("json", "DEBUG")
        assert sdk.isEnabledFor(logging.INFO)
        configure("json", "ERROR")
        assert not sdk.isEnabledFor(logging.WARNING)
    finally:
        sdk.setLevel(saved)
