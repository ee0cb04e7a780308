"""The task entity's rules: new_task and apply_changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import FieldError, Invalid
from domain.tasks import Task, TaskDraft, TaskStatus, apply_changes, is_task_id, new_task
from tests.unit.tasks.fakes import T0

ID = "00000000-0000-0000-0000-000000000001"


def create(now: datetime = T0, **fields: object) -> Task:
    draft = TaskDraft(**fields)  # type: ignore[arg-type]
    return new_task(task_id=ID, owner_id="owner-1", project_id="project-1", draft=draft, now=now)


def fields_of(error: Invalid) -> list[str]:
    return [e.field for e in error.errors]


def test_new_task_defaults() -> None:
    task = create(title="Write report")
    assert task == Task(
        id=ID,
        owner_id="owner-1",
        project_id="project-1",
        title="Write report",
        description=None,
        status=TaskStatus.TODO,
        priority=1,
        labels=(),
        due_at=None,
        completed_at=None,
        created_at=T0,
        updated_at=T0,
        version=1,
    )


def test_title_is_trimmed() -> None:
    assert create(title="  \t Write report \n").title == "Write report"


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_blank_title_is_invalid(title: str) -> None:
    with pytest.raises(Invalid) as caught:
        create(title=title)
    assert fields_of(caught.value) == ["title"]


def test_title_bound_counts_after_trimming() -> None:
    assert len(create(title="  " + "x" * 500 + "  ").title) == 500
    with pytest.raises(Invalid) as caught:
        create(title="x" * 501)
    assert fields_of(caught.value) == ["title"]


def test_description_bound_and_null() -> None:
    assert create(title="t", description="d" * 20_000).description == "d" * 20_000
    assert create(title="t", description=None).description is None
    with pytest.raises(Invalid) as caught:
        create(title="t", description="d" * 20_001)
    assert fields_of(caught.value) == ["description"]


@pytest.mark.parametrize("priority", [1, 2, 3, 4])
def test_priority_in_range(priority: int) -> None:
    assert create(title="t", priority=priority).priority == priority


@pytest.mark.parametrize("priority", [0, 5, -1, True, "2", 2.0, None])
def test_priority_out_of_range_or_wrong_type(priority: object) -> None:
    with pytest.raises(Invalid) as caught:
        create(title="t", priority=priority)
    assert fields_of(caught.value) == ["priority"]


def test_labels_trimmed_merged_in_first_seen_order() -> None:
    task = create(title="t", labels=[" b ", "a", "b", "c", "a ", "B"])
    assert task.labels == ("b", "a", "c", "B")


def test_labels_limit_counts_distinct_labels() -> None:
    twenty = [f"l{i}" for i in range(20)]
    assert create(title="t", labels=twenty + twenty).labels == tuple(twenty)
    with pytest.raises(Invalid) as caught:
        create(title="t", labels=[*twenty, "one more"])
    assert fields_of(caught.value) == ["labels"]


def test_each_bad_label_is_named_by_index() -> None:
    with pytest.raises(Invalid) as caught:
        create(title="t", labels=["ok", "  ", "x" * 51, 7, "y" * 50])
    assert fields_of(caught.value) == ["labels[1]", "labels[2]", "labels[3]"]


@pytest.mark.parametrize("labels", [None, "a,b", {"a": 1}])
def test_labels_must_be_a_list(labels: object) -> None:
    with pytest.raises(Invalid) as caught:
        create(title="t", labels=labels)
    assert fields_of(caught.value) == ["labels"]


def test_every_offending_field_is_reported_at_once() -> None:
    with pytest.raises(Invalid) as caught:
        create(title=" ", description=5, status="later", priority=9, labels=[""], due_at="soon")
    assert fields_of(caught.value) == [
        "title",
        "description",
        "status",
        "priority",
        "labels[0]",
        "due_at",
    ]


def test_nul_characters_are_refused() -> None:
    with pytest.raises(Invalid) as caught:
        create(title="a\x00b", description="\x00", labels=["x\x00"])
    assert fields_of(caught.value) == ["title", "description", "labels[0]"]


def test_due_at_converted_to_utc_and_naive_refused() -> None:
    paris = timezone(timedelta(hours=2))
    task = create(title="t", due_at=datetime(2026, 5, 1, 14, 0, tzinfo=paris))
    assert task.due_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert task.due_at is not None
    assert task.due_at.tzinfo is UTC
    with pytest.raises(Invalid) as caught:
        create(title="t", due_at=datetime(2026, 5, 1, 14, 0))
    assert caught.value.errors == [FieldError("due_at", "must include a timezone offset")]


def test_created_done_is_completed_now() -> None:
    task = create(title="t", status="done")
    assert task.status is TaskStatus.DONE
    assert task.completed_at == T0


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        create(now=datetime(2026, 1, 1), title="t")


# --- apply_changes -------------------------------------------------------------------------------

LATER = T0 + timedelta(hours=1)
LATEST = T0 + timedelta(hours=2)


def test_change_bumps_version_and_updated_at() -> None:
    task = create(title="t")
    changed = apply_changes(task, {"title": "  new  ", "priority": 3}, LATER)
    assert (changed.title, changed.priority) == ("new", 3)
    assert (changed.version, changed.updated_at, changed.created_at) == (2, LATER, T0)
    again = apply_changes(changed, {"labels": ["x"]}, LATEST)
    assert (again.version, again.updated_at, again.labels) == (3, LATEST, ("x",))


def test_patch_that_changes_nothing_returns_the_same_task() -> None:
    task = create(title="t", labels=["a"], priority=2)
    same = apply_changes(task, {"title": " t ", "labels": ["a", "a"], "priority": 2}, LATER)
    assert same is task
    assert apply_changes(task, {}, LATER) is task


def test_null_clears_description_and_due_at() -> None:
    task = create(title="t", description="d", due_at=LATER)
    cleared = apply_changes(task, {"description": None, "due_at": None}, LATER)
    assert (cleared.description, cleared.due_at, cleared.version) == (None, None, 2)


def test_null_for_non_nullable_fields_is_invalid() -> None:
    task = create(title="t")
    changes = {"title": None, "status": None, "priority": None, "labels": None}
    with pytest.raises(Invalid) as caught:
        apply_changes(task, changes, LATER)
    assert fields_of(caught.value) == ["title", "status", "priority", "labels"]


def test_unknown_and_server_fields_are_invalid() -> None:
    task = create(title="t")
    changes = {"version": 9, "id": "x", "colour": "red", "title": "ok"}
    with pytest.raises(Invalid) as caught:
        apply_changes(task, changes, LATER)
    assert sorted(fields_of(caught.value)) == ["colour", "id", "version"]
    assert any(e.message.startswith("is set by the server") for e in caught.value.errors)


def test_completed_at_follows_status() -> None:
    task = create(title="t")
    done = apply_changes(task, {"status": "done"}, LATER)
    assert done.completed_at == LATER
    # staying done keeps the first completion time
    retitled = apply_changes(done, {"status": "done", "title": "u"}, LATEST)
    assert retitled.completed_at == LATER
    reopened = apply_changes(retitled, {"status": TaskStatus.IN_PROGRESS}, LATEST)
    assert reopened.completed_at is None
    assert reopened.version == 4


def _canonical_by_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(lambda u: f"{{{u}}}"),
        st.uuids().map(lambda u: f"{u}\n"),
        st.text(alphabet="0123456789abcdefABCDEF-{}:urn\n ", min_size=30, max_size=40),
        st.text(),
    )
)
def test_a_task_id_is_exactly_what_uuid_prints(value: str) -> None:
    assert is_task_id(value) is _canonical_by_uuid(value)
