"""In-memory twins of the project ports: projects, memberships, comments and task placement.

They work on tables of the shared `MemoryDatabase`, inside `MemoryProjectUnitOfWork`, which is the
task/identity unit of work plus these repositories: a snapshot at the start, written back on
commit, so leaving without a commit changes nothing. Where a task sits is read from the tasks
table itself (`Task.project_id`, `parent_id`, `assignee_id`). Orders follow
`domain.ports.projects` exactly.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.memory.tasks import descendants
from adapters.memory.uow import MemoryDatabase, MemoryUnitOfWork
from domain.comments import Comment, CommentPosition
from domain.errors import Conflict
from domain.projects import Member, Membership, Project, ProjectView, Role, members_order_key
from domain.task_tree import TaskNode
from domain.tasks import Task
from domain.users import User


def _membership_key(project_id: str, user_id: str) -> str:
    return f"{project_id}/{user_id}"


class MemoryProjectRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Project] = tables["projects"]
        self._memberships: dict[str, Membership] = tables["memberships"]
        self._comments: dict[str, Comment] = tables["comments"]
        self._tasks: dict[str, Task] = tables["tasks"]
        self._trash: dict[str, object] = tables["trash"]

    async def add(self, project: Project, *, inbox_of: str | None = None) -> None:
        if project.id in self._rows:
            raise ValueError(f"project {project.id} already exists")
        if inbox_of is not None and await self.inbox_of(inbox_of) is not None:
            raise Conflict("this user already has an inbox")
        self._rows[project.id] = project

    async def get(self, project_id: str, *, for_update: bool = False) -> Project | None:  # noqa: ARG002
        # One process, one event loop: a commit replaces rows whole, so no lock is needed.
        return self._rows.get(project_id)

    async def update(self, project: Project, expected_version: int) -> bool:
        stored = self._rows.get(project.id)
        if stored is None or stored.version != expected_version:
            return False
        self._rows[project.id] = project
        return True

    async def delete(self, project_id: str) -> bool:
        if self._rows.pop(project_id, None) is None:
            return False
        for key, membership in list(self._memberships.items()):
            if membership.project_id == project_id:
                del self._memberships[key]
        task_ids = {t.id for t in self._tasks.values() if t.project_id == project_id}
        for task_id in task_ids:
            del self._tasks[task_id]
            self._trash.pop(task_id, None)
        for comment_id, comment in list(self._comments.items()):
            if comment.task_id in task_ids:
                del self._comments[comment_id]
        return True

    async def list_for_user(self, user_id: str, only: Set[str] | None) -> list[ProjectView]:
        views = [
            ProjectView(self._rows[m.project_id], m.role)
            for m in self._memberships.values()
            if m.user_id == user_id
            and m.project_id in self._rows
            and (only is None or m.project_id in only)
        ]
        return sorted(views, key=lambda v: (v.project.created_at, v.project.id))

    async def inbox_of(self, user_id: str) -> Project | None:
        for membership in self._memberships.values():
            project = self._rows.get(membership.project_id)
            if membership.user_id == user_id and project is not None and project.inbox:
                return project
        return None


class MemoryMembershipRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Membership] = tables["memberships"]
        self._users: dict[str, User] = tables["users"]

    async def get(self, project_id: str, user_id: str) -> Membership | None:
        return self._rows.get(_membership_key(project_id, user_id))

    async def add(self, membership: Membership) -> None:
        key = _membership_key(membership.project_id, membership.user_id)
        if key in self._rows:
            raise Conflict("this user is already a member of the project")
        self._rows[key] = membership

    async def set_role(self, project_id: str, user_id: str, role: Role) -> Membership | None:
        key = _membership_key(project_id, user_id)
        stored = self._rows.get(key)
        if stored is None:
            return None
        self._rows[key] = replace(stored, role=role)
        return self._rows[key]

    async def remove(self, project_id: str, user_id: str) -> bool:
        return self._rows.pop(_membership_key(project_id, user_id), None) is not None

    async def count_owners(self, project_id: str) -> int:
        return sum(
            1 for m in self._rows.values() if m.project_id == project_id and m.role is Role.OWNER
        )

    def _of(self, project_id: str) -> list[Membership]:
        return [m for m in self._rows.values() if m.project_id == project_id]

    async def list_members(self, project_id: str) -> list[Member]:
        members = sorted(self._of(project_id), key=members_order_key)
        return [
            Member(m, self._users[m.user_id].email, self._users[m.user_id].name)
            for m in members
            if m.user_id in self._users
        ]

    async def get_member(self, project_id: str, user_id: str) -> Member | None:
        membership = self._rows.get(_membership_key(project_id, user_id))
        user = self._users.get(user_id)
        if membership is None or user is None:
            return None
        return Member(membership, user.email, user.name)

    async def member_ids(self, project_id: str) -> set[str]:
        return {m.user_id for m in self._of(project_id)}

    async def for_user(self, user_id: str) -> list[Membership]:
        rows = [m for m in self._rows.values() if m.user_id == user_id]
        return sorted(rows, key=lambda m: (m.added_at, m.project_id))


class MemoryCommentRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Comment] = tables["comments"]
        self._tasks: dict[str, Task] = tables["tasks"]

    async def in_project(self, project_id: str) -> list[Comment]:
        return sorted(
            (
                c
                for c in self._rows.values()
                if (task := self._tasks.get(c.task_id)) is not None
                and task.project_id == project_id
            ),
            key=lambda c: (c.created_at, c.id),
        )

    async def add(self, comment: Comment) -> None:
        if comment.id in self._rows:
            raise ValueError(f"comment {comment.id} already exists")
        self._rows[comment.id] = comment

    async def get(self, task_id: str, comment_id: str) -> Comment | None:
        comment = self._rows.get(comment_id)
        return comment if comment is not None and comment.task_id == task_id else None

    async def delete(self, comment_id: str) -> bool:
        return self._rows.pop(comment_id, None) is not None

    async def list_page(
        self, task_id: str, after: CommentPosition | None, *, limit: int
    ) -> list[Comment]:
        rows = sorted(
            (c for c in self._rows.values() if c.task_id == task_id),
            key=lambda c: (c.created_at, c.id),
        )
        if after is not None:
            rows = [c for c in rows if (c.created_at, c.id) > (after.created_at, after.id)]
        return rows[:limit]


def _node(task: Task) -> TaskNode:
    return TaskNode(task.id, task.project_id, task.parent_id, task.assignee_id)


class MemoryProjectTasks:
    """Where each task sits, read from the tasks table (deleting a task removes it; a trashed
    one is no node, but still part of its ancestors' subtrees)."""

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._tasks: dict[str, Task] = tables["tasks"]
        self._trash: dict[str, object] = tables["trash"]

    async def in_project(self, project_id: str) -> list[Task]:
        return sorted(
            (t for t in self._tasks.values() if t.project_id == project_id),
            key=lambda t: (t.created_at, t.id),
        )

    async def node(self, task_id: str) -> TaskNode | None:
        task = self._tasks.get(task_id)
        return None if task is None or task_id in self._trash else _node(task)

    async def ancestors(self, task_id: str) -> list[str]:
        chain: list[str] = []
        task = self._tasks.get(task_id)
        while task is not None and task.parent_id is not None and task.parent_id not in chain:
            chain.append(task.parent_id)
            task = self._tasks.get(task.parent_id)
        return chain

    async def subtree(self, task_id: str) -> list[TaskNode]:
        root = self._tasks.get(task_id)
        if root is None:
            return []
        return [_node(root), *(_node(t) for t in descendants(self._tasks, task_id))]

    async def subtree_tasks(self, task_id: str) -> list[Task]:
        return descendants(self._tasks, task_id) if task_id in self._tasks else []

    async def clear_assignee(self, project_id: str, user_id: str, at: datetime) -> list[Task]:
        changed: list[Task] = []
        for task_id, task in list(self._tasks.items()):
            if task.project_id == project_id and task.assignee_id == user_id:
                cleared = replace(task, assignee_id=None, updated_at=at, version=task.version + 1)
                self._tasks[task_id] = cleared
                changed.append(cleared)
        return changed


class MemoryProjectUnitOfWork(MemoryUnitOfWork):
    """The memory unit of work with the project repositories too (same snapshot and commit):
    what task, project and identity use cases all run on."""

    projects: MemoryProjectRepository
    memberships: MemoryMembershipRepository
    comments: MemoryCommentRepository
    project_tasks: MemoryProjectTasks

    def _bind(self) -> None:
        super()._bind()
        self.projects = MemoryProjectRepository(self._work)
        self.memberships = MemoryMembershipRepository(self._work)
        self.comments = MemoryCommentRepository(self._work)
        self.project_tasks = MemoryProjectTasks(self._work)


if TYPE_CHECKING:
    from domain.ports.projects import ProjectUnitOfWorkFactory

    # Type-checked only: the twin implements the port.
    _twin: ProjectUnitOfWorkFactory = lambda: MemoryProjectUnitOfWork(MemoryDatabase())  # noqa: E731
