"""Ports of projects and collaboration: projects, memberships, comments, the task facts the
rules need, and the unit of work that reaches them all in one transaction.

Orders every adapter reproduces exactly:
- projects of a user: oldest first, (created_at, id) ascending;
- members of a project: owners first, then added_at, then user_id
  (`domain.projects.members_order_key`);
- comments of a task: oldest first, (created_at, id) ascending, keyset after a `CommentPosition`.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from datetime import datetime
from typing import Protocol

from domain.comments import Comment, CommentPosition
from domain.ports import UnitOfWorkBase
from domain.ports.events import EventLog
from domain.projects import Member, Membership, Project, ProjectView, Role
from domain.task_tree import TaskNode
from domain.tasks import Task
from domain.users import User


class ProjectRepository(Protocol):
    async def add(self, project: Project, *, inbox_of: str | None = None) -> None:
        """Insert; an inbox names its user in `inbox_of`. A second inbox of one user is a
        `Conflict`."""
        ...

    async def get(self, project_id: str, *, for_update: bool = False) -> Project | None:
        """The project, or None. `for_update` locks its row until the transaction ends (SQL:
        `SELECT ... FOR UPDATE`), which serialises member changes of one project, so two owners
        cannot both leave and leave it ownerless."""
        ...

    async def update(self, project: Project, expected_version: int) -> bool:
        """Store `project` if the stored one is at `expected_version`; False otherwise."""
        ...

    async def delete(self, project_id: str) -> bool:
        """Delete the project for good with its memberships, its tasks (trashed ones too) and
        their comments. False when there was no such project."""
        ...

    async def list_for_user(self, user_id: str, only: Set[str] | None) -> list[ProjectView]:
        """The projects `user_id` is a member of with their role, oldest first (created_at,
        then id); with `only`, just those of them whose id is in `only`."""
        ...

    async def inbox_of(self, user_id: str) -> Project | None:
        """The user's inbox (the inbox project the user is a member of), or None."""
        ...


class MembershipRepository(Protocol):
    async def get(self, project_id: str, user_id: str) -> Membership | None: ...

    async def add(self, membership: Membership) -> None:
        """Insert; a second membership of the same user in the same project is a `Conflict`."""
        ...

    async def set_role(self, project_id: str, user_id: str, role: Role) -> Membership | None:
        """The membership with its new role, or None when there is no such membership."""
        ...

    async def remove(self, project_id: str, user_id: str) -> bool: ...

    async def count_owners(self, project_id: str) -> int: ...

    async def list_members(self, project_id: str) -> list[Member]:
        """The members with their e-mail and name: owners first, then by added_at, then user_id."""
        ...

    async def get_member(self, project_id: str, user_id: str) -> Member | None:
        """One membership with the user's e-mail and name, or None."""
        ...

    async def member_ids(self, project_id: str) -> set[str]:
        """The user ids of every member (any role), for the assignee rule."""
        ...

    async def for_user(self, user_id: str) -> list[Membership]:
        """Every membership of a user (what "projects I can read" is made of)."""
        ...


class CommentRepository(Protocol):
    async def add(self, comment: Comment) -> None: ...

    async def get(self, task_id: str, comment_id: str) -> Comment | None:
        """The comment only when it belongs to `task_id`."""
        ...

    async def delete(self, comment_id: str) -> bool: ...

    async def in_project(self, project_id: str) -> list[Comment]:
        """Every comment on the project's tasks (trashed ones too), oldest first."""
        ...

    async def list_page(
        self, task_id: str, after: CommentPosition | None, *, limit: int
    ) -> list[Comment]:
        """At most `limit` comments of the task, oldest first, strictly after `after`."""
        ...


class ProjectTasks(Protocol):
    """The facts about tasks that project rules need, read from the tasks themselves
    (`Task.project_id`, `parent_id`, `assignee_id`)."""

    async def in_project(self, project_id: str) -> list[Task]:
        """Every task of the project, trashed ones too, oldest first."""
        ...

    async def node(self, task_id: str) -> TaskNode | None:
        """The live (not trashed) task's place, or None for an unknown, trashed or deleted id."""
        ...

    async def ancestors(self, task_id: str) -> list[str]:
        """The ids above a task, nearest first (parent, grandparent, ...)."""
        ...

    async def subtree(self, task_id: str) -> list[TaskNode]:
        """The task and all its descendants, trashed ones too: a move carries them along and
        the depth rule counts them, so a restored task always fits where it was."""
        ...

    async def subtree_tasks(self, task_id: str) -> list[Task]:
        """The descendants of a task (not the task itself), whole and trashed ones too, for
        moving them."""
        ...

    async def clear_assignee(self, project_id: str, user_id: str, at: datetime) -> list[Task]:
        """Unassign `user_id` from every task of the project, trashed ones too (each changed
        task gets a new version and `updated_at`); the changed tasks, as they are now."""
        ...


class UserLookup(Protocol):
    """The part of the user repository that member management needs."""

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """The user with this canonical e-mail, compared case-insensitively."""
        ...


class ProjectUnitOfWork(UnitOfWorkBase, Protocol):
    """One transaction over projects, memberships, comments, task facts and users."""

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def memberships(self) -> MembershipRepository: ...

    @property
    def comments(self) -> CommentRepository: ...

    @property
    def project_tasks(self) -> ProjectTasks: ...

    @property
    def users(self) -> UserLookup: ...

    @property
    def events(self) -> EventLog: ...


type ProjectUnitOfWorkFactory = Callable[[], ProjectUnitOfWork]
