"""In-memory twins of the project ports: projects, memberships, comments and task placement.

They work on tables of the shared `MemoryDatabase`, inside `MemoryProjectUnitOfWork`, which is the
task/identity unit of work plus these tables: a snapshot at the start, written back on commit, so
leaving without a commit changes nothing. Orders follow `domain.ports.projects` exactly.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.memory.uow import MemoryDatabase, MemoryUnitOfWork
from domain.comments import Comment, CommentPosition
from domain.errors import Conflict
from domain.projects import Member, Membership, Project, ProjectView, Role, members_order_key
from domain.task_tree import TaskNode
from domain.users import User

PROJECT_TABLES = ("projects", "memberships", "comments", "task_nodes")


def _membership_key(project_id: str, user_id: str) -> str:
    return f"{project_id}/{user_id}"


class MemoryProjectRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Project] = tables["projects"]
        self._memberships: dict[str, Membership] = tables["memberships"]
        self._comments: dict[str, Comment] = tables["comments"]
        self._nodes: dict[str, TaskNode] = tables["task_nodes"]
        self._tasks: dict[str, Any] = tables["tasks"]

    async def add(self, project: Project) -> None:
        if project.id in self._rows:
            raise ValueError(f"project {project.id} already exists")
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
        task_ids = {n.id for n in self._nodes.values() if n.project_id == project_id}
        for task_id in task_ids:
            del self._nodes[task_id]
            self._tasks.pop(task_id, None)
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


class MemoryProjectTasks:
    """Where each live task sits (project, parent, assignee), keyed by task id. Trashing or
    deleting a task removes its row here."""

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, TaskNode] = tables["task_nodes"]

    def place(self, node: TaskNode) -> None:
        """Put a task (or move it): what the task use cases will do once tasks have projects."""
        self._rows[node.id] = node

    async def node(self, task_id: str) -> TaskNode | None:
        return self._rows.get(task_id)

    async def ancestors(self, task_id: str) -> list[str]:
        chain: list[str] = []
        node = self._rows.get(task_id)
        while node is not None and node.parent_id is not None and node.parent_id not in chain:
            chain.append(node.parent_id)
            node = self._rows.get(node.parent_id)
        return chain

    async def subtree(self, task_id: str) -> list[TaskNode]:
        root = self._rows.get(task_id)
        if root is None:
            return []
        found, seen, frontier = [root], {task_id}, {task_id}
        while frontier:
            level = [n for n in self._rows.values() if n.parent_id in frontier and n.id not in seen]
            found.extend(level)
            frontier = {n.id for n in level}
            seen |= frontier
        return found

    async def clear_assignee(self, project_id: str, user_id: str, at: datetime) -> int:  # noqa: ARG002
        # Nodes carry no version or updated_at; the task repository bumps those once tasks
        # hold their assignee themselves.
        changed = 0
        for task_id, node in list(self._rows.items()):
            if node.project_id == project_id and node.assignee_id == user_id:
                self._rows[task_id] = replace(node, assignee_id=None)
                changed += 1
        return changed


class MemoryProjectUnitOfWork(MemoryUnitOfWork):
    """The memory unit of work with the project tables too (same snapshot and commit)."""

    projects: MemoryProjectRepository
    memberships: MemoryMembershipRepository
    comments: MemoryCommentRepository
    project_tasks: MemoryProjectTasks

    def __init__(self, database: MemoryDatabase) -> None:
        for name in PROJECT_TABLES:
            database.tables.setdefault(name, {})
        super().__init__(database)

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
