"""Tasks in projects, over the memory twins: the role matrix of every task use case, the
subtask and assignee rules, moving a subtree, and the project a new task goes to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from domain.errors import DomainError, Forbidden, Invalid, NotFound
from domain.projects import Role
from domain.task_queries import TaskFilter, TaskQuery
from domain.task_tree import MAX_DEPTH
from domain.tasks import TaskDraft
from domain.use_cases.projects import open_inbox
from tests.unit.projects.support import Team, Who, team

OK = None
CALLERS = (
    "owner",
    "editor",
    "viewer",
    "non_member",
    "key_inside",
    "key_outside",
    "key_tasks_only",
    "key_read_only",
)

type Run = Callable[[Who], Awaitable[object]]
type Act = Callable[[Team], Run]


def create(t: Team) -> Run:
    return lambda who: t.world.create_task.execute(
        who, TaskDraft(title="New", project_id=t.project.id)
    )


def get(t: Team) -> Run:
    task = t.world.task(t.project)
    return lambda who: t.world.get_task.execute(who, task.id)


def patch(t: Team) -> Run:
    task = t.world.task(t.project)
    return lambda who: t.world.update_task.execute(who, task.id, {"title": "Renamed"})


def delete(t: Team) -> Run:
    task = t.world.task(t.project)
    return lambda who: t.world.delete_task.execute(who, task.id)


F, N = Forbidden, NotFound
MATRIX: dict[str, tuple[Act, tuple[type[DomainError] | None, ...]]] = {
    "create": (create, (OK, OK, F, N, OK, N, OK, F)),
    "get": (get, (OK, OK, OK, N, OK, N, OK, OK)),
    "patch": (patch, (OK, OK, F, N, OK, N, OK, F)),
    "delete": (delete, (OK, OK, F, N, OK, N, OK, F)),
}
CASES = [
    pytest.param(act, name, expected[i], id=f"{label}-{name}")
    for label, (act, expected) in MATRIX.items()
    for i, name in enumerate(CALLERS)
]


@pytest.mark.parametrize(("act", "caller", "expected"), CASES)
async def test_role_matrix(act: Act, caller: str, expected: type[DomainError] | None) -> None:
    t = team()
    run = act(t)
    before = t.world.snapshot()
    if expected is None:
        await run(t.caller(caller))
        assert (t.world.snapshot() == before) == (act is get)
        return
    with pytest.raises(expected):
        await run(t.caller(caller))
    assert t.world.snapshot() == before


@pytest.mark.parametrize(
    ("caller", "sees"),
    [
        ("owner", {"p", "q"}),
        ("editor", {"p"}),
        ("viewer", {"p"}),
        ("non_member", {"oscar"}),
        ("key_inside", {"p"}),
        ("key_outside", {"q"}),
        ("key_tasks_only", {"p", "q"}),
        ("key_read_only", {"p", "q"}),
    ],
)
async def test_lists_show_every_readable_project_and_no_other(caller: str, sees: set[str]) -> None:
    t = team()
    where = {"p": t.project, "q": t.other, "oscar": t.outsiders_project}
    made = {name: t.world.task(project).id for name, project in where.items()}
    page = await t.world.list_tasks.execute(t.caller(caller), TaskQuery())
    assert {task.id for task in page.items} == {made[name] for name in sees}
    # A project filter narrows; one the caller cannot read gives an empty list.
    for name, project in where.items():
        only = await t.world.list_tasks.execute(
            t.caller(caller), TaskQuery(TaskFilter(project_id=project.id))
        )
        assert [task.id for task in only.items] == ([made[name]] if name in sees else [])


async def test_list_filters_by_assignee_and_parent() -> None:
    t = team()
    w = t.world
    top = w.task(t.project, assignee=t.editor.id)
    child = w.task(t.project, parent=top.id, assignee=t.owner.id)
    loose = w.task(t.project)
    owner = t.caller("owner")

    async def ids(**wanted: str) -> set[str]:
        page = await w.list_tasks.execute(owner, TaskQuery(TaskFilter(**wanted)))  # type: ignore[arg-type]
        return {task.id for task in page.items}

    assert await ids(assignee_id="me") == {child.id}
    assert await ids(assignee_id=t.editor.id) == {top.id}
    assert await ids(assignee_id="none") == {loose.id}
    assert await ids(parent_id="none") == {top.id, loose.id}
    assert await ids(parent_id=top.id) == {child.id}
    with pytest.raises(Invalid) as bad:
        await ids(assignee_id="someone", parent_id="x")
    assert [e.field for e in bad.value.errors] == ["assignee_id", "parent_id"]


async def test_a_new_task_goes_to_the_callers_inbox_unless_a_project_is_named() -> None:
    t = team()
    w = t.world
    async with w.uow() as uow:
        inbox = await open_inbox(
            uow.projects,
            uow.memberships,
            user_id=t.editor.id,
            project_id=w.ids.new_id(),
            now=w.clock.now(),
        )
        await uow.commit()
    editor = t.caller("editor")
    task = await w.create_task.execute(editor, TaskDraft(title="Mine"))
    assert (task.project_id, task.owner_id) == (inbox.id, t.editor.id)
    named = await w.create_task.execute(editor, TaskDraft(title="Ours", project_id=t.project.id))
    assert named.project_id == t.project.id
    # A key restricted to projects must name one.
    with pytest.raises(Invalid) as bad:
        await w.create_task.execute(t.caller("key_inside"), TaskDraft(title="Where?"))
    assert [e.field for e in bad.value.errors] == ["project_id"]
    for unknown in ("not-a-uuid", w.ids.new_id()):
        with pytest.raises(NotFound):
            await w.create_task.execute(editor, TaskDraft(title="x", project_id=unknown))


async def test_parent_rules_on_create() -> None:
    t = team()
    w = t.world
    editor = t.caller("editor")
    chain = [w.task(t.project)]
    for _ in range(MAX_DEPTH - 1):
        chain.append(w.task(t.project, parent=chain[-1].id))
    child = await w.create_task.execute(
        editor, TaskDraft(title="c", project_id=t.project.id, parent_id=chain[-2].id)
    )
    assert child.parent_id == chain[-2].id
    elsewhere = w.task(t.other)
    for parent in (chain[-1].id, elsewhere.id, w.ids.new_id(), "nope"):
        before = w.snapshot()
        with pytest.raises(Invalid) as bad:
            await w.create_task.execute(
                editor, TaskDraft(title="c", project_id=t.project.id, parent_id=parent)
            )
        assert [e.field for e in bad.value.errors] == ["parent_id"]
        assert w.snapshot() == before


async def test_assignee_must_be_a_member_and_both_fields_are_named_at_once() -> None:
    t = team()
    w = t.world
    editor = t.caller("editor")
    task = await w.create_task.execute(
        editor, TaskDraft(title="a", project_id=t.project.id, assignee_id=t.viewer.id)
    )
    assert task.assignee_id == t.viewer.id
    with pytest.raises(Invalid) as bad:
        await w.create_task.execute(
            editor,
            TaskDraft(
                title="a", project_id=t.project.id, parent_id="nope", assignee_id=t.outsider.id
            ),
        )
    assert [e.field for e in bad.value.errors] == ["parent_id", "assignee_id"]
    with pytest.raises(Invalid) as bad:
        await w.update_task.execute(editor, task.id, {"assignee_id": t.outsider.id})
    assert [e.field for e in bad.value.errors] == ["assignee_id"]
    cleared = await w.update_task.execute(editor, task.id, {"assignee_id": None})
    assert (cleared.assignee_id, cleared.version) == (None, 2)


async def test_a_task_cannot_become_its_own_descendant_or_too_deep() -> None:
    t = team()
    w = t.world
    editor = t.caller("editor")
    root = w.task(t.project)
    child = w.task(t.project, parent=root.id)
    grandchild = w.task(t.project, parent=child.id)
    for parent in (root.id, grandchild.id):
        with pytest.raises(Invalid) as bad:
            await w.update_task.execute(editor, root.id, {"parent_id": parent})
        assert [e.field for e in bad.value.errors] == ["parent_id"]
    # A three-level subtree under a level-3 task would reach level 6.
    deep = w.task(t.project)
    deeper = w.task(t.project, parent=deep.id)
    deepest = w.task(t.project, parent=deeper.id)
    with pytest.raises(Invalid):
        await w.update_task.execute(editor, root.id, {"parent_id": deepest.id})
    moved = await w.update_task.execute(editor, root.id, {"parent_id": deeper.id})
    assert (moved.parent_id, moved.version) == (deeper.id, 2)


async def test_moving_a_task_carries_its_subtree_along() -> None:
    t = team()
    w = t.world
    w.join(t.other, t.editor, Role.EDITOR)
    root = w.task(t.project, assignee=t.viewer.id)
    child = w.task(t.project, parent=root.id, assignee=t.viewer.id)
    grandchild = w.task(t.project, parent=child.id, assignee=t.editor.id)
    bystander = w.task(t.project, assignee=t.viewer.id)
    editor = t.caller("editor")
    # The root's assignee is not a member of the target: the patch must clear or change it.
    with pytest.raises(Invalid) as bad:
        await w.update_task.execute(editor, root.id, {"project_id": t.other.id})
    assert [e.field for e in bad.value.errors] == ["assignee_id"]
    moved = await w.update_task.execute(
        editor, root.id, {"project_id": t.other.id, "assignee_id": None}
    )
    assert (moved.project_id, moved.assignee_id, moved.version) == (t.other.id, None, 2)
    after_child, after_grandchild = w.stored(child.id), w.stored(grandchild.id)
    assert (after_child.project_id, after_child.parent_id, after_child.version) == (
        t.other.id,
        root.id,
        2,
    )
    assert after_child.assignee_id is None  # the viewer is no member of the target
    assert (after_grandchild.project_id, after_grandchild.assignee_id) == (t.other.id, t.editor.id)
    assert after_grandchild.version == 2
    assert w.stored(bystander.id).project_id == t.project.id
    # A moved child keeps its parent only inside the new project.
    leaf = w.task(t.project, parent=bystander.id)
    with pytest.raises(Invalid) as bad:
        await w.update_task.execute(editor, leaf.id, {"project_id": t.other.id})
    assert [e.field for e in bad.value.errors] == ["parent_id"]
    regrafted = await w.update_task.execute(
        editor, leaf.id, {"project_id": t.other.id, "parent_id": root.id}
    )
    assert (regrafted.project_id, regrafted.parent_id) == (t.other.id, root.id)


@pytest.mark.parametrize(("role", "error"), [(None, NotFound), (Role.VIEWER, Forbidden)])
async def test_moving_needs_write_access_to_the_target(
    role: Role | None, error: type[DomainError]
) -> None:
    t = team()
    w = t.world
    if role is not None:
        w.join(t.other, t.editor, role)
    task = w.task(t.project)
    before = w.snapshot()
    with pytest.raises(error):
        await w.update_task.execute(t.caller("editor"), task.id, {"project_id": t.other.id})
    assert w.snapshot() == before


async def test_deleting_a_task_moves_its_subtree_to_the_trash() -> None:
    t = team()
    w = t.world
    root = w.task(t.project)
    child = w.task(t.project, parent=root.id)
    grandchild = w.task(t.project, parent=child.id)
    kept = w.task(t.project)
    await w.delete_task.execute(t.caller("editor"), root.id)
    assert set(w.database.tables["tasks"]) == {kept.id, root.id, child.id, grandchild.id}
    marks = w.database.tables["trash"]
    assert set(marks) == {root.id, child.id, grandchild.id}
    assert {(m.deleted_at, m.trashed_with) for m in marks.values()} == {
        (marks[root.id].deleted_at, root.id)
    }
    for gone in (root, child, grandchild):
        with pytest.raises(NotFound):
            await w.get_task.execute(t.caller("owner"), gone.id)
