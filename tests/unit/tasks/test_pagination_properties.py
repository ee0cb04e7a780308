"""Property: walking every page returns each matching task exactly once, in order, also while
tasks are being added between pages."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from domain.ports.tasks import TaskUnitOfWork
from domain.projects import Membership, Role
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskStatus
from domain.use_cases.tasks import ListTasks
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import T0, make_task

OWNER, OTHER = "00000000-0000-7000-8000-0000000000a1", "00000000-0000-7000-8000-0000000000a2"
CALLER = Who(OWNER)
# The caller owns P1 and views P2; P3 is someone else's.
P1, P2, P3 = (f"00000000-0000-7000-8000-00000000000{n}" for n in (1, 2, 3))
READABLE = {P1, P2}
# few distinct values, so that ties (broken by id) are frequent
TIMES = [T0 + timedelta(hours=h) for h in range(4)]
LABELS = ["a", "b", "c"]
WORDS = ["Foo", "foo", "BAR", "Straße", "strasse", "x"]

ids = st.uuids().map(str)
times = st.sampled_from(TIMES)


@st.composite
def tasks(draw: st.DrawFn, task_id: str | None = None) -> Task:
    created = draw(times)
    return make_task(
        task_id or draw(ids),
        owner_id=draw(st.sampled_from([OWNER, OWNER, OWNER, OTHER])),
        project_id=draw(st.sampled_from([P1, P1, P2, P3])),
        assignee_id=draw(st.sampled_from([None, OWNER, OTHER])),
        title=" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))),
        description=draw(st.none() | st.sampled_from(WORDS)),
        status=draw(st.sampled_from(TaskStatus)),
        priority=draw(st.integers(1, 4)),
        labels=tuple(draw(st.lists(st.sampled_from(LABELS), max_size=3, unique=True))),
        due_at=draw(st.none() | times),
        created_at=created,
        updated_at=created + timedelta(hours=draw(st.integers(0, 2))),
    )


filters = st.builds(
    TaskFilter,
    status=st.none() | st.sampled_from(TaskStatus),
    priority=st.none() | st.integers(1, 4),
    labels=st.lists(st.sampled_from(LABELS), max_size=2, unique=True).map(tuple),
    due_before=st.none() | times,
    due_after=st.none() | times,
    q=st.none() | st.sampled_from(["foo", "FOO", "ss", "ß", "Bar x"]),
    project_id=st.none() | st.sampled_from([P1, P2, P3]),
    assignee_id=st.none() | st.sampled_from(["me", "none", OTHER]),
)


def matches(task: Task, wanted: TaskFilter) -> bool:
    """The filter contract, spelled out independently of the adapter."""
    due = task.due_at
    text = [task.title.casefold(), (task.description or "").casefold()]
    assignee = {"me": OWNER, "none": None}.get(str(wanted.assignee_id), wanted.assignee_id)
    return (
        task.project_id in READABLE
        and wanted.project_id in (None, task.project_id)
        and (wanted.assignee_id is None or task.assignee_id == assignee)
        and wanted.status in (None, task.status)
        and wanted.priority in (None, task.priority)
        and all(label in task.labels for label in wanted.labels)
        and (wanted.due_before is None or (due is not None and due < wanted.due_before))
        and (wanted.due_after is None or (due is not None and due >= wanted.due_after))
        and (wanted.q is None or any(wanted.q.casefold() in t for t in text))
    )


def sort_value(task: Task, sort: TaskSort) -> datetime | int | None:
    return CursorPosition.of(task, sort).value


def expected_order(rows: list[Task], sort: TaskSort) -> list[str]:
    """Two stable passes: by id, then by value with NULL last (ascending); both reversed for a
    descending sort."""
    ordered = sorted(rows, key=lambda t: t.id, reverse=sort.descending)

    def by_value(task: Task) -> tuple[bool, float]:
        value = sort_value(task, sort)
        if value is None:
            return (True, 0.0)
        return (False, value.timestamp() if isinstance(value, datetime) else float(value))

    ordered.sort(key=by_value, reverse=sort.descending)
    return [t.id for t in ordered]


def in_order(pair: tuple[Task, Task], sort: TaskSort) -> bool:
    first, second = (CursorPosition.of(t, sort) for t in pair)

    def key(p: CursorPosition) -> tuple[bool, float, str]:
        value = p.value
        number = value.timestamp() if isinstance(value, datetime) else float(value or 0)
        return (value is None, number, p.id)

    return key(first) > key(second) if sort.descending else key(first) < key(second)


def unit_of_work(database: MemoryDatabase) -> TaskUnitOfWork:
    memberships = database.tables["memberships"]
    for project_id, role in ((P1, Role.OWNER), (P2, Role.VIEWER)):
        memberships[f"{project_id}/{OWNER}"] = Membership(project_id, OWNER, role, T0)
    memberships[f"{P3}/{OTHER}"] = Membership(P3, OTHER, Role.OWNER, T0)
    return MemoryProjectUnitOfWork(database)


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    rows=st.lists(tasks(), max_size=30, unique_by=lambda t: t.id),
    wanted=filters,
    sort=st.sampled_from(TaskSort),
    limit=st.integers(1, 7),
)
async def test_walking_all_pages_returns_each_match_once_in_order(
    rows: list[Task], wanted: TaskFilter, sort: TaskSort, limit: int
) -> None:
    database = MemoryDatabase()
    database.tables["tasks"].update({t.id: t for t in rows})
    list_tasks = ListTasks(lambda: unit_of_work(database))
    query = TaskQuery(wanted, sort, limit)
    seen: list[str] = []
    position: CursorPosition | None = None
    for _ in range(len(rows) + 2):
        page = await list_tasks.execute(CALLER, query.at(position))
        assert len(page.items) <= limit
        seen += [t.id for t in page.items]
        position = page.next_position
        if position is None:
            break
        assert len(page.items) == limit
    assert position is None
    assert seen == expected_order([t for t in rows if matches(t, wanted)], sort)


@SETTINGS
@given(
    rows=st.lists(tasks(), max_size=25, unique_by=lambda t: t.id),
    wanted=filters,
    sort=st.sampled_from(TaskSort),
    limit=st.integers(1, 5),
    data=st.data(),
)
async def test_inserts_between_pages_never_skip_or_repeat(
    rows: list[Task], wanted: TaskFilter, sort: TaskSort, limit: int, data: st.DataObject
) -> None:
    database = MemoryDatabase()
    table = database.tables["tasks"]
    table.update({t.id: t for t in rows})
    list_tasks = ListTasks(lambda: unit_of_work(database))
    query = TaskQuery(wanted, sort, limit)
    returned: list[Task] = []
    position: CursorPosition | None = None
    for _ in range(200):
        page = await list_tasks.execute(CALLER, query.at(position))
        returned += page.items
        position = page.next_position
        if position is None:
            break
        for _ in range(data.draw(st.integers(0, 3), label="inserts")):
            new = data.draw(tasks(str(uuid.uuid4())), label="new task")
            table[new.id] = new
    assert position is None
    returned_ids = [t.id for t in returned]
    assert len(returned_ids) == len(set(returned_ids)), "a task was returned twice"
    assert all(matches(t, wanted) for t in returned)
    assert all(in_order(pair, sort) for pair in itertools.pairwise(returned))
    originally = {t.id for t in rows if matches(t, wanted)}
    assert originally <= set(returned_ids), "an existing matching task was skipped"
