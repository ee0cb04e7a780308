"""The parameters of the created events of a batch of creates: an array per column that differs
between events, one value for what they share, and a refusal when they do not share it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from adapters.sql.events import created_events_params
from domain.events import Event, EventMaker, EventType
from domain.tasks import TaskDraft, new_task

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class _Caller:
    user_id = "u-1"
    scopes: frozenset[str] = frozenset()
    project_ids: frozenset[str] | None = None


def _events(at: datetime, n: int) -> list[Event]:
    numbers = count()
    maker = EventMaker(lambda: f"e-{next(numbers)}", _Caller(), at)
    tasks = [
        new_task(task_id=f"t-{i}", owner_id="u-1", project_id="p", draft=TaskDraft(f"T{i}"), now=at)
        for i in range(n)
    ]
    return [maker.task(EventType.TASK_CREATED, task) for task in tasks]


def test_what_the_events_share_is_passed_once_and_the_rest_per_event() -> None:
    events = _events(AT, 3)
    params = created_events_params(events)
    assert params["e_id"] == ["e-0", "e-1", "e-2"]
    assert params["e_resource_id"] == ["t-0", "t-1", "t-2"]
    assert [b.count('"title":"T') for b in params["e_body"]] == [1, 1, 1]
    assert params["e_type"] == "task.created"
    assert params["e_resource_type"] == "task"
    assert params["e_occurred_at"] == AT.isoformat()
    assert params["e_audience"] is None


def test_events_of_different_times_are_refused() -> None:
    events = _events(AT, 2) + _events(AT + timedelta(seconds=1), 1)
    with pytest.raises(ValueError, match="occurred_at"):
        created_events_params(events)
