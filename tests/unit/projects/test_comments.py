"""Comment use cases: create, list (oldest first, keyset pages), delete."""

from __future__ import annotations

import pytest

from domain.comments import Comment, CommentPosition
from domain.errors import Forbidden, Invalid, NotFound
from domain.projects import Role
from tests.unit.projects.support import Who, team


async def test_create_and_list_oldest_first() -> None:
    t = team()
    task = t.world.task(t.project)
    written = []
    for who, body in ((t.editor, "first"), (t.owner, "  second  "), (t.editor, "third")):
        t.world.clock.advance()
        written.append(await t.world.create_comment.execute(Who(who.id), task.id, body))
    assert [(c.author_id, c.body, c.task_id) for c in written] == [
        (t.editor.id, "first", task.id),
        (t.owner.id, "  second  ", task.id),
        (t.editor.id, "third", task.id),
    ]
    page = await t.world.list_comments.execute(Who(t.viewer.id), task.id)
    assert page.items == tuple(written)
    assert page.next_position is None


async def test_pages_walk_every_comment_once_in_order() -> None:
    t = team()
    task = t.world.task(t.project)
    other_task = t.world.task(t.project)
    await t.world.create_comment.execute(Who(t.owner.id), other_task.id, "elsewhere")
    written = []
    for i in range(7):
        if i % 3 == 0:  # several share a created_at: the id breaks the tie
            t.world.clock.advance()
        written.append(await t.world.create_comment.execute(Who(t.owner.id), task.id, f"c{i}"))
    seen: list[Comment] = []
    after = None
    while True:
        page = await t.world.list_comments.execute(Who(t.viewer.id), task.id, after, limit=3)
        seen.extend(page.items)
        if page.next_position is None:
            break
        assert page.next_position == CommentPosition.of(page.items[-1])
        after = page.next_position
    assert seen == written


@pytest.mark.parametrize("limit", [0, 201, -1, True])
async def test_limit_bounds(limit: int) -> None:
    t = team()
    task = t.world.task(t.project)
    with pytest.raises(Invalid) as caught:
        await t.world.list_comments.execute(Who(t.owner.id), task.id, limit=limit)
    assert [e.field for e in caught.value.errors] == ["limit"]


@pytest.mark.parametrize("body", ["", "x" * 10_001, None, ["hi"]])
async def test_bad_body_changes_nothing(body: object) -> None:
    t = team()
    task = t.world.task(t.project)
    before = t.world.snapshot()
    with pytest.raises(Invalid) as caught:
        await t.world.create_comment.execute(Who(t.editor.id), task.id, body)
    assert [e.field for e in caught.value.errors] == ["body"]
    assert t.world.snapshot() == before


async def test_unknown_or_unreachable_task_is_not_found_naming_the_task() -> None:
    t = team()
    theirs = t.world.task(t.outsiders_project)
    before = t.world.snapshot()
    for task_id in (theirs.id, "00000000-0000-0000-0000-00000000dead", "nope"):
        for call in (
            t.world.create_comment.execute(Who(t.owner.id), task_id, "hi"),
            t.world.list_comments.execute(Who(t.owner.id), task_id),
            t.world.delete_comment.execute(Who(t.owner.id), task_id, task_id),
        ):
            with pytest.raises(NotFound) as caught:
                await call
            assert caught.value.detail == f"task {task_id!r} not found"
    assert t.world.snapshot() == before


async def test_a_trashed_tasks_comments_are_not_found() -> None:
    t = team()
    task = t.world.task(t.project)
    await t.world.create_comment.execute(Who(t.editor.id), task.id, "hi")
    # A task no longer live (trashed, or gone) leaves its comments stored but unreachable.
    del t.world.database.tables["tasks"][task.id]
    with pytest.raises(NotFound):
        await t.world.list_comments.execute(Who(t.owner.id), task.id)


async def test_delete_by_author_or_owner() -> None:
    t = team()
    task = t.world.task(t.project)
    by_editor = await t.world.create_comment.execute(Who(t.editor.id), task.id, "mine")
    by_owner = await t.world.create_comment.execute(Who(t.owner.id), task.id, "boss")
    before = t.world.snapshot()
    with pytest.raises(Forbidden):
        await t.world.delete_comment.execute(Who(t.editor.id), task.id, by_owner.id)
    assert t.world.snapshot() == before
    await t.world.delete_comment.execute(Who(t.editor.id), task.id, by_editor.id)
    with pytest.raises(NotFound, match="comment"):
        await t.world.delete_comment.execute(Who(t.owner.id), task.id, by_editor.id)
    await t.world.delete_comment.execute(Who(t.owner.id), task.id, by_owner.id)
    assert (await t.world.list_comments.execute(Who(t.owner.id), task.id)).items == ()


async def test_an_author_demoted_to_viewer_cannot_delete() -> None:
    t = team()
    task = t.world.task(t.project)
    comment = await t.world.create_comment.execute(Who(t.editor.id), task.id, "mine")
    await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.editor.id, "viewer")
    with pytest.raises(Forbidden):
        await t.world.delete_comment.execute(Who(t.editor.id), task.id, comment.id)


async def test_a_comment_of_another_task_is_not_found() -> None:
    t = team()
    mine = t.world.task(t.project)
    theirs = t.world.task(t.outsiders_project)
    their_comment = await t.world.create_comment.execute(Who(t.outsider.id), theirs.id, "x")
    # Reached through a task the caller can see: still 404, and nothing deleted.
    before = t.world.snapshot()
    with pytest.raises(NotFound, match="comment"):
        await t.world.delete_comment.execute(Who(t.owner.id), mine.id, their_comment.id)
    assert t.world.snapshot() == before


async def test_restricted_key_reaches_comments_only_in_its_projects() -> None:
    t = team()
    here, there = t.world.task(t.project), t.world.task(t.other)
    t.world.join(t.other, t.editor, Role.EDITOR)
    key = Who(t.editor.id, project_ids=frozenset({t.project.id}))
    await t.world.create_comment.execute(key, here.id, "ok")
    with pytest.raises(NotFound):
        await t.world.create_comment.execute(key, there.id, "no")
