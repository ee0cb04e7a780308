"""Rules of the task tree inside projects: parents, depth, assignees, and moving a subtree.

Pure functions over small inputs the use case reads in its transaction (the parent and its chain
of ancestors, the moving task's subtree, the members of the target project). Each returns the
offending fields as `FieldError`s, so one answer can name `parent_id` and `assignee_id` together;
`FieldErrors` turns them into `Invalid`.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from domain.errors import FieldError

MAX_DEPTH = 5  # a top-level task is level 1


@dataclass(frozen=True, slots=True)
class TaskNode:
    """Where a live task sits: its project, its parent and its assignee."""

    id: str
    project_id: str
    parent_id: str | None
    assignee_id: str | None = None


def subtree_height(task_id: str, subtree: Sequence[TaskNode]) -> int:
    """Levels in the subtree rooted at `task_id` (1 for a task without children). `subtree`
    holds the task's descendants (the task itself may be included; other rows are ignored)."""
    children: dict[str, list[str]] = {}
    for node in subtree:
        if node.parent_id is not None and node.id != task_id:
            children.setdefault(node.parent_id, []).append(node.id)
    height, level, seen = 0, [task_id], {task_id}
    while level:
        height += 1
        level = [c for p in level for c in children.get(p, ()) if c not in seen]
        seen.update(level)
    return height


def parent_errors(
    *,
    task_id: str | None,
    project_id: str,
    parent: TaskNode | None,
    parent_ancestors: Sequence[str],
    height: int = 1,
) -> list[FieldError]:
    """Whether `parent` may be the parent of task `task_id` (None: a task being created) that
    will live in `project_id` and whose own subtree is `height` levels tall.

    `parent` is the live task the request names, or None when no live task has that id (a
    trashed, deleted or unknown one). `parent_ancestors` are the ids above the parent, nearest
    first (its parent, grandparent, ... up to a top-level task).
    Rules: same project; not the task itself nor one of its descendants; the deepest task of the
    moved subtree at most `MAX_DEPTH` levels deep. A task outside the project answers as an
    unknown one, so nothing about other projects leaks.
    """
    if parent is None or parent.project_id != project_id:
        return [FieldError("parent_id", "must be a live task of the same project")]
    if task_id is not None and (parent.id == task_id or task_id in parent_ancestors):
        return [FieldError("parent_id", "must not be the task itself or one of its subtasks")]
    parent_level = 1 + len(parent_ancestors)
    if parent_level + height > MAX_DEPTH:
        return [
            FieldError(
                "parent_id",
                f"would nest tasks more than {MAX_DEPTH} levels deep "
                f"(the parent is at level {parent_level}, the subtree is {height} tall)",
            )
        ]
    return []


def assignee_errors(assignee_id: str | None, member_ids: Set[str]) -> list[FieldError]:
    """An assignee must be a member (any role) of the task's project, or null."""
    if assignee_id is not None and assignee_id not in member_ids:
        return [FieldError("assignee_id", "must be a member of the task's project")]
    return []


@dataclass(frozen=True, slots=True)
class MovePlan:
    """What a move does: every task that changes project (the task first, then its
    descendants) and the descendants whose assignee loses access and is cleared."""

    task_ids: tuple[str, ...]
    clear_assignee_of: tuple[str, ...]


def plan_move(
    *,
    task: TaskNode,
    subtree: Sequence[TaskNode],
    new_project_id: str,
    new_parent: TaskNode | None,
    new_parent_id: str | None,
    new_parent_ancestors: Sequence[str],
    new_assignee_id: str | None,
    target_member_ids: Set[str],
) -> tuple[MovePlan, list[FieldError]]:
    """Move `task` and its descendants (`subtree`) to `new_project_id`.

    `new_parent_id` / `new_assignee_id` are the task's values after the patch (the patch's, or
    the current ones when the patch leaves them out); `new_parent` is the live task with that id
    as the use case found it. The parent must be null or a task in the new project, and the
    assignee null or a member of it; else errors on `parent_id` / `assignee_id`. Descendants keep
    their parents (all inside the subtree); a descendant whose assignee is not a member of the new
    project has its assignee cleared, so every assignee stays a member of its task's project.
    Permission in both projects is the access policy's (`WRITE_TASKS` in each).
    """
    errors: list[FieldError] = []
    if new_parent_id is not None:
        errors += parent_errors(
            task_id=task.id,
            project_id=new_project_id,
            parent=new_parent
            if new_parent is not None and new_parent.id == new_parent_id
            else None,
            parent_ancestors=new_parent_ancestors,
            height=subtree_height(task.id, subtree),
        )
    errors += assignee_errors(new_assignee_id, target_member_ids)
    descendants = [n for n in subtree if n.id != task.id]
    plan = MovePlan(
        task_ids=(task.id, *(n.id for n in descendants)),
        clear_assignee_of=tuple(
            n.id
            for n in descendants
            if n.assignee_id is not None and n.assignee_id not in target_member_ids
        ),
    )
    return plan, errors
