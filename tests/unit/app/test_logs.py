"""The logging set-up's processors: request context, domain events and the JSON line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
import structlog

from adapters.events.log import DOMAIN_EVENT, LoggingEventPublisher
from adapters.http.logcontext import REQUEST_LOG, RequestLog, bind_request_log
from app.logs import (
    configure_logging,
    fold_domain_event,
    merge_request_context,
    render_json_line,
)
from app.settings import load_settings
from domain.ports.tasks import TaskEvent, TaskEventName


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


def test_outside_a_request_a_domain_event_is_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = structlog.get_config()
    configure_logging(
        load_settings(environ={"DATABASE_URL": "memory://", "LOG_FORMAT": "json"}, dotenv_path=None)
    )
    structlog.configure(cache_logger_on_first_use=False)
    try:
        capsys.readouterr()
        occurred = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        event = TaskEvent(TaskEventName.CREATED, "t-1", "u-1", occurred, 1)
        asyncio.run(LoggingEventPublisher().publish(event))
        (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    finally:
        structlog.configure(**saved)
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
