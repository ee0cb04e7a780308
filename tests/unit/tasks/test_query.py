"""List query values: validation, sort metadata, cursor payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.http.cursors import cursor_payload, position_from_payload, query_fingerprint
from domain.errors import Invalid
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import TaskStatus
from tests.unit.tasks.fakes import T0, make_task

ID = "00000000-0000-0000-0000-00000000000a"


def fields_of(error: Invalid) -> list[str]:
    return [e.field for e in error.errors]


def test_sort_field_and_direction() -> None:
    assert (TaskSort.DUE_AT_DESC.field, TaskSort.DUE_AT_DESC.descending) == ("due_at", True)
    assert (TaskSort.PRIORITY.field, TaskSort.PRIORITY.descending) == ("priority", False)
    assert TaskQuery().sort is TaskSort.CREATED_AT_DESC
    assert TaskQuery().limit == 50


def test_filter_normalises() -> None:
    plus2 = timezone(timedelta(hours=2))
    wanted = TaskFilter(
        status="done",  # type: ignore[arg-type]
        labels=(" a ", "b", "a"),
        due_before=datetime(2026, 1, 1, 2, tzinfo=plus2),
    )
    assert wanted.status is TaskStatus.DONE
    assert wanted.labels == ("a", "b")
    assert wanted.due_before == datetime(2026, 1, 1, tzinfo=UTC)


def test_filter_reports_every_bad_field() -> None:
    with pytest.raises(Invalid) as caught:
        TaskFilter(
            status="nope",  # type: ignore[arg-type]
            priority=7,
            labels=("",),
            due_before=datetime(2026, 1, 1),
            due_after="yesterday",  # type: ignore[arg-type]
            q="",
        )
    assert fields_of(caught.value) == [
        "status",
        "priority",
        "label[0]",
        "due_before",
        "due_after",
        "q",
    ]


@pytest.mark.parametrize("q", ["x" * 201, "a\x00"])
def test_q_bounds(q: str) -> None:
    with pytest.raises(Invalid):
        TaskFilter(q=q)


@pytest.mark.parametrize("limit", [0, 201, True, "10"])
def test_limit_bounds(limit: object) -> None:
    with pytest.raises(Invalid) as caught:
        TaskQuery(limit=limit)  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["limit"]


def test_limit_extremes_accepted() -> None:
    assert TaskQuery(limit=1).limit == 1
    assert TaskQuery(limit=200).limit == 200


def test_sort_string_is_coerced_and_bad_sort_refused() -> None:
    assert TaskQuery(sort="-due_at").sort is TaskSort.DUE_AT_DESC  # type: ignore[arg-type]
    with pytest.raises(Invalid) as caught:
        TaskQuery(sort="title")  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["sort"]


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        (TaskSort.PRIORITY, T0),
        (TaskSort.PRIORITY, 9),
        (TaskSort.PRIORITY, None),
        (TaskSort.CREATED_AT, 2),
        (TaskSort.CREATED_AT, None),
        (TaskSort.UPDATED_AT_DESC, datetime(2026, 1, 1)),
    ],
)
def test_position_must_fit_the_sort(sort: TaskSort, value: object) -> None:
    with pytest.raises(Invalid) as caught:
        TaskQuery(sort=sort, after=CursorPosition(value, ID))  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["cursor"]


def test_position_needs_a_canonical_id() -> None:
    with pytest.raises(Invalid):
        TaskQuery(after=CursorPosition(T0, ID.upper()))


def test_null_due_at_position_is_allowed_for_due_sorts_only() -> None:
    assert TaskQuery(sort=TaskSort.DUE_AT, after=CursorPosition(None, ID)).after is not None


@pytest.mark.parametrize(
    ("sort", "task"),
    [
        (TaskSort.CREATED_AT_DESC, make_task(ID, created_at=T0 + timedelta(microseconds=7))),
        (TaskSort.UPDATED_AT, make_task(ID, updated_at=T0 + timedelta(days=3))),
        (TaskSort.DUE_AT, make_task(ID, due_at=T0)),
        (TaskSort.DUE_AT_DESC, make_task(ID, due_at=None)),
        (TaskSort.PRIORITY_DESC, make_task(ID, priority=4)),
    ],
)
def test_cursor_payload_round_trip(sort: TaskSort, task: object) -> None:
    query = TaskQuery(TaskFilter(labels=("a",), q="x"), sort=sort, limit=5)
    position = CursorPosition.of(task, sort)  # type: ignore[arg-type]
    payload = cursor_payload(query, position)
    assert position_from_payload(payload, query) == position
    # the page size may change between pages
    assert position_from_payload(payload, TaskQuery(query.filter, sort, limit=9)) == position


def test_cursor_payload_is_refused_for_another_query() -> None:
    query = TaskQuery(TaskFilter(labels=("a",)), sort=TaskSort.PRIORITY)
    payload = cursor_payload(query, CursorPosition(2, ID))
    other_filter = TaskQuery(TaskFilter(labels=("b",)), sort=TaskSort.PRIORITY)
    other_sort = TaskQuery(TaskFilter(labels=("a",)), sort=TaskSort.PRIORITY_DESC)
    for other in (other_filter, other_sort):
        with pytest.raises(Invalid) as caught:
            position_from_payload(payload, other)
        assert fields_of(caught.value) == ["cursor"]


@pytest.mark.parametrize(
    "tamper",
    [
        {"k": "not a time"},
        {"k": 2.5},
        {"k": 9},
        {"i": "42"},
        {"i": 42},
        {"v": 2},
        {"extra": 1},
    ],
)
def test_tampered_cursor_payload_is_refused(tamper: dict[str, object]) -> None:
    query = TaskQuery(sort=TaskSort.PRIORITY)
    payload = {**cursor_payload(query, CursorPosition(2, ID)), **tamper}
    with pytest.raises(Invalid):
        position_from_payload(payload, query)


@pytest.mark.parametrize("payload", [None, [], "x", {"v": 1}])
def test_malformed_payload_is_refused(payload: object) -> None:
    with pytest.raises(Invalid):
        position_from_payload(payload, TaskQuery())


def test_naive_time_in_payload_is_refused() -> None:
    query = TaskQuery()
    payload = {**cursor_payload(query, CursorPosition(T0, ID)), "k": "2026-01-01T00:00:00"}
    with pytest.raises(Invalid):
        position_from_payload(payload, query)


def test_the_fingerprint_is_the_digest_of_sort_and_filter_and_tells_queries_apart() -> None:
    import hashlib
    import json

    due = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    query = TaskQuery(
        filter=TaskFilter(
            status=TaskStatus("todo"), priority=2, labels=("b", "a"), due_before=due, q="Tax"
        ),
        sort=TaskSort("due_at"),
    )
    text = json.dumps(
        ["due_at", "todo", 2, ["b", "a"], due.isoformat(), None, "Tax"],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # The cursor format of running replicas: it must not change with how it is computed.
    assert query_fingerprint(query) == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert query_fingerprint(query) == query_fingerprint(query)  # a repeat (served from the memo)
    same = TaskQuery(
        filter=TaskFilter(
            status=TaskStatus("todo"), priority=2, labels=("b", "a"), due_before=due, q="Tax"
        ),
        sort=TaskSort("due_at"),
        limit=10,
    )
    assert query_fingerprint(same) == query_fingerprint(query)  # limit is not part of it
    others = [
        TaskQuery(
            filter=TaskFilter(status=TaskStatus("done"), priority=2, labels=("b", "a")),
            sort=TaskSort("due_at"),
        ),
        TaskQuery(
            filter=TaskFilter(
                status=TaskStatus("todo"), priority=2, labels=("b", "a"), due_before=due, q="tax"
            ),
            sort=TaskSort("due_at"),
        ),
        TaskQuery(
            filter=TaskFilter(
                status=TaskStatus("todo"), priority=2, labels=("b", "a"), due_before=due, q="Tax"
            ),
            sort=TaskSort("-due_at"),
        ),
    ]
    assert len({query_fingerprint(o) for o in others} | {query_fingerprint(query)}) == 4
