"""SQL repositories of projects, memberships, comments and task placement (the project ports).

Like the task repository, each runs Core statements built once at import through the unit of
work's `StatementRunner`, so they serve both connection modes (SQLAlchemy, and the raw asyncpg
connection the task use cases run on). Every value is a named bound parameter, ids are read back
as text, and no statement carries a literal value the raw path could not bind. Orders follow
`domain.ports.projects` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnClause

from adapters.sql.tables import comments, project_members, projects, task_counts, tasks, users
from adapters.sql.tasks import TASK_COLUMNS, StatementRunner, task_from_row
from adapters.sql.types import DRIVER_BOOLEAN, is_canonical_uuid
from domain.comments import Comment, CommentPosition
from domain.errors import Conflict
from domain.projects import Member, Membership, Project, ProjectView, Role
from domain.task_tree import TaskNode
from domain.tasks import Task

# --- projects ------------------------------------------------------------------------------------

_PROJECT_COLUMNS = (
    cast(projects.c.id, Text).label("id_text"),
    projects.c.name,
    projects.c.description,
    projects.c.inbox,
    projects.c.created_at,
    projects.c.updated_at,
    projects.c.version,
)
# The flag goes to the driver as a Python bool, which both drivers take as is.
_INSERT_PROJECT = insert(projects).values(
    {
        column.key: bindparam(column.key, type_=DRIVER_BOOLEAN if column.key == "inbox" else None)
        for column in projects.c
    }
)
_SELECT_PROJECT = select(*_PROJECT_COLUMNS).where(projects.c.id == bindparam("project_id"))
_SELECT_PROJECT_FOR_UPDATE = _SELECT_PROJECT.with_for_update()
_UPDATE_PROJECT = (
    update(projects)
    .values(
        name=bindparam("name"),
        description=bindparam("description"),
        updated_at=bindparam("updated_at"),
        version=bindparam("version"),
    )
    .where(projects.c.id == bindparam("project_id"), projects.c.version == bindparam("expected"))
)
# Memberships, tasks and their comments go with it (ON DELETE CASCADE).
_DELETE_PROJECT = delete(projects).where(projects.c.id == bindparam("project_id"))
# Run first, in the same transaction: each creator's task count goes down by their tasks in the
# project (the cascade removes them without the task statements that keep the counts).
_in_project = select(tasks.c.owner_id).where(tasks.c.project_id == bindparam("project_id"))
_UNCOUNT_PROJECT = (
    update(task_counts)
    .where(task_counts.c.owner_id.in_(_in_project))
    .values(
        n=task_counts.c.n
        - select(func.count())
        .select_from(tasks)
        .where(
            tasks.c.project_id == bindparam("project_id"),
            tasks.c.owner_id == task_counts.c.owner_id,
        )
        .scalar_subquery()
    )
)
_SELECT_PROJECTS_OF_USER = (
    select(*_PROJECT_COLUMNS, project_members.c.role)
    .select_from(projects.join(project_members, project_members.c.project_id == projects.c.id))
    .where(project_members.c.user_id == bindparam("user_id"))
    .order_by(projects.c.created_at, projects.c.id)
)
_SELECT_INBOX = select(*_PROJECT_COLUMNS).where(projects.c.inbox_owner_id == bindparam("user_id"))


def project_from_row(row: Sequence[Any]) -> Project:
    project_id, name, description, inbox, created_at, updated_at, version = row[:7]
    return Project(project_id, name, description, bool(inbox), created_at, updated_at, version)


class SqlProjectRepository:
    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def add(self, project: Project, *, inbox_of: str | None = None) -> None:
        row = {
            "id": project.id,
            "name": project.name,
            "description": project.description,
            "inbox": project.inbox,
            "inbox_owner_id": inbox_of if project.inbox else None,
            "created_at": project.created_at,
            "updated_at": project.updated_at,
            "version": project.version,
        }
        try:
            await self._run.insert(_INSERT_PROJECT, row)
        except IntegrityError:
            raise Conflict("this user already has an inbox") from None

    async def get(self, project_id: str, *, for_update: bool = False) -> Project | None:
        if not is_canonical_uuid(project_id):
            return None
        statement = _SELECT_PROJECT_FOR_UPDATE if for_update else _SELECT_PROJECT
        row = await self._run.fetch_one(statement, {"project_id": project_id})
        return None if row is None else project_from_row(row)

    async def update(self, project: Project, expected_version: int) -> bool:
        params = {
            "project_id": project.id,
            "name": project.name,
            "description": project.description,
            "updated_at": project.updated_at,
            "version": project.version,
            "expected": expected_version,
        }
        return await self._run.write(_UPDATE_PROJECT, params) == 1

    async def delete(self, project_id: str) -> bool:
        if not is_canonical_uuid(project_id):
            return False
        await self._run.write(_UNCOUNT_PROJECT, {"project_id": project_id})
        return await self._run.write(_DELETE_PROJECT, {"project_id": project_id}) == 1

    async def list_for_user(self, user_id: str, only: Set[str] | None) -> list[ProjectView]:
        if not is_canonical_uuid(user_id):
            return []
        rows = await self._run.fetch(_SELECT_PROJECTS_OF_USER, {"user_id": user_id})
        views = [ProjectView(project_from_row(row), Role(row[7])) for row in rows]
        return [v for v in views if only is None or v.project.id in only]

    async def inbox_of(self, user_id: str) -> Project | None:
        if not is_canonical_uuid(user_id):
            return None
        row = await self._run.fetch_one(_SELECT_INBOX, {"user_id": user_id})
        return None if row is None else project_from_row(row)


# --- memberships ---------------------------------------------------------------------------------

_m = project_members.c
_MEMBERSHIP_COLUMNS = (
    cast(_m.project_id, Text).label("project_id_text"),
    cast(_m.user_id, Text).label("user_id_text"),
    _m.role,
    _m.added_at,
)
# (Not named like the columns: an UPDATE keeps those names for its SET clause.)
_ONE = and_(_m.project_id == bindparam("the_project_id"), _m.user_id == bindparam("the_user_id"))
_INSERT_MEMBERSHIP = insert(project_members)
_SELECT_MEMBERSHIP = select(*_MEMBERSHIP_COLUMNS).where(_ONE)
_SET_ROLE = update(project_members).values(role=bindparam("role")).where(_ONE)
_DELETE_MEMBERSHIP = delete(project_members).where(_ONE)
_COUNT_OWNERS = select(func.count()).where(
    _m.project_id == bindparam("project_id"), _m.role == bindparam("owner")
)
_MEMBERS_ORDER = (
    case((_m.role == bindparam("owner"), literal_column("0")), else_=literal_column("1")),
    _m.added_at,
    _m.user_id,
)
_users = users
_SELECT_MEMBERS = (
    select(*_MEMBERSHIP_COLUMNS, _users.c.email, _users.c.name)
    .select_from(project_members.join(_users, _users.c.id == _m.user_id))
    .where(_m.project_id == bindparam("project_id"))
    .order_by(*_MEMBERS_ORDER)
)
_SELECT_MEMBER = (
    select(*_MEMBERSHIP_COLUMNS, _users.c.email, _users.c.name)
    .select_from(project_members.join(_users, _users.c.id == _m.user_id))
    .where(_ONE)
)
_SELECT_MEMBER_IDS = select(cast(_m.user_id, Text)).where(_m.project_id == bindparam("project_id"))
_SELECT_MEMBERSHIPS_OF_USER = (
    select(*_MEMBERSHIP_COLUMNS)
    .where(_m.user_id == bindparam("user_id"))
    .order_by(_m.added_at, _m.project_id)
)


def membership_from_row(row: Sequence[Any]) -> Membership:
    project_id, user_id, role, added_at = row[:4]
    return Membership(project_id, user_id, Role(role), added_at)


def _member_from_row(row: Sequence[Any]) -> Member:
    return Member(membership_from_row(row), row[4], row[5])


def _both_ids(project_id: str, user_id: str) -> bool:
    return is_canonical_uuid(project_id) and is_canonical_uuid(user_id)


class SqlMembershipRepository:
    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def get(self, project_id: str, user_id: str) -> Membership | None:
        if not _both_ids(project_id, user_id):
            return None
        params = {"the_project_id": project_id, "the_user_id": user_id}
        row = await self._run.fetch_one(_SELECT_MEMBERSHIP, params)
        return None if row is None else membership_from_row(row)

    async def add(self, membership: Membership) -> None:
        row = {
            "project_id": membership.project_id,
            "user_id": membership.user_id,
            "role": membership.role.value,
            "added_at": membership.added_at,
        }
        try:
            await self._run.insert(_INSERT_MEMBERSHIP, row)
        except IntegrityError:
            raise Conflict("this user is already a member of the project") from None

    async def set_role(self, project_id: str, user_id: str, role: Role) -> Membership | None:
        if not _both_ids(project_id, user_id):
            return None
        params = {"the_project_id": project_id, "the_user_id": user_id, "role": role.value}
        if await self._run.write(_SET_ROLE, params) != 1:
            return None
        return await self.get(project_id, user_id)

    async def remove(self, project_id: str, user_id: str) -> bool:
        if not _both_ids(project_id, user_id):
            return False
        params = {"the_project_id": project_id, "the_user_id": user_id}
        return await self._run.write(_DELETE_MEMBERSHIP, params) == 1

    async def count_owners(self, project_id: str) -> int:
        if not is_canonical_uuid(project_id):
            return 0
        params = {"project_id": project_id, "owner": Role.OWNER.value}
        row = await self._run.fetch_one(_COUNT_OWNERS, params)
        return 0 if row is None else int(row[0])

    async def list_members(self, project_id: str) -> list[Member]:
        if not is_canonical_uuid(project_id):
            return []
        params = {"project_id": project_id, "owner": Role.OWNER.value}
        return [_member_from_row(row) for row in await self._run.fetch(_SELECT_MEMBERS, params)]

    async def get_member(self, project_id: str, user_id: str) -> Member | None:
        if not _both_ids(project_id, user_id):
            return None
        params = {"the_project_id": project_id, "the_user_id": user_id}
        row = await self._run.fetch_one(_SELECT_MEMBER, params)
        return None if row is None else _member_from_row(row)

    async def member_ids(self, project_id: str) -> set[str]:
        if not is_canonical_uuid(project_id):
            return set()
        rows = await self._run.fetch(_SELECT_MEMBER_IDS, {"project_id": project_id})
        return {row[0] for row in rows}

    async def for_user(self, user_id: str) -> list[Membership]:
        if not is_canonical_uuid(user_id):
            return []
        rows = await self._run.fetch(_SELECT_MEMBERSHIPS_OF_USER, {"user_id": user_id})
        return [membership_from_row(row) for row in rows]


# --- comments ------------------------------------------------------------------------------------

_COMMENT_COLUMNS = (
    cast(comments.c.id, Text).label("id_text"),
    cast(comments.c.task_id, Text).label("task_id_text"),
    cast(comments.c.author_id, Text).label("author_id_text"),
    comments.c.body,
    comments.c.created_at,
)
_INSERT_COMMENT = insert(comments)
_SELECT_COMMENT = select(*_COMMENT_COLUMNS).where(
    comments.c.id == bindparam("comment_id"), comments.c.task_id == bindparam("task_id")
)
_DELETE_COMMENT = delete(comments).where(comments.c.id == bindparam("comment_id"))
_comment_page = select(*_COMMENT_COLUMNS).where(comments.c.task_id == bindparam("task_id"))
_comment_order = (comments.c.created_at, comments.c.id)
_FIRST_COMMENTS = _comment_page.order_by(*_comment_order).limit(bindparam("limit"))
_COMMENTS_AFTER = (
    _comment_page.where(
        tuple_(*_comment_order)
        > tuple_(
            bindparam("after_created_at", type_=comments.c.created_at.type),
            bindparam("after_id", type_=comments.c.id.type),
        )
    )
    .order_by(*_comment_order)
    .limit(bindparam("limit"))
)


# Every comment on the project's tasks (trashed ones too), oldest first: what a project delete
# takes with it.
_COMMENTS_IN_PROJECT = (
    select(*_COMMENT_COLUMNS)
    .select_from(comments.join(tasks, tasks.c.id == comments.c.task_id))
    .where(tasks.c.project_id == bindparam("project_id"))
    .order_by(*_comment_order)
)


def comment_from_row(row: Sequence[Any]) -> Comment:
    comment_id, task_id, author_id, body, created_at = row
    return Comment(comment_id, task_id, author_id, body, created_at)


class SqlCommentRepository:
    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def add(self, comment: Comment) -> None:
        row = {
            "id": comment.id,
            "task_id": comment.task_id,
            "author_id": comment.author_id,
            "body": comment.body,
            "created_at": comment.created_at,
        }
        await self._run.insert(_INSERT_COMMENT, row)

    async def get(self, task_id: str, comment_id: str) -> Comment | None:
        if not (is_canonical_uuid(task_id) and is_canonical_uuid(comment_id)):
            return None
        params = {"task_id": task_id, "comment_id": comment_id}
        row = await self._run.fetch_one(_SELECT_COMMENT, params)
        return None if row is None else comment_from_row(row)

    async def delete(self, comment_id: str) -> bool:
        if not is_canonical_uuid(comment_id):
            return False
        return await self._run.write(_DELETE_COMMENT, {"comment_id": comment_id}) == 1

    async def in_project(self, project_id: str) -> list[Comment]:
        if not is_canonical_uuid(project_id):
            return []
        rows = await self._run.fetch(_COMMENTS_IN_PROJECT, {"project_id": project_id})
        return [comment_from_row(row) for row in rows]

    async def list_page(
        self, task_id: str, after: CommentPosition | None, *, limit: int
    ) -> list[Comment]:
        if not is_canonical_uuid(task_id):
            return []
        params: dict[str, Any] = {"task_id": task_id, "limit": limit}
        statement = _FIRST_COMMENTS
        if after is not None:
            if not is_canonical_uuid(after.id):
                return []
            params |= {"after_created_at": after.created_at, "after_id": after.id}
            statement = _COMMENTS_AFTER
        return [comment_from_row(row) for row in await self._run.fetch(statement, params)]


# --- where tasks sit -----------------------------------------------------------------------------

# No chain is deeper than the tree rules allow; the bound only stops a walk on corrupt data.
_MAX_WALK: ColumnClause[Any] = literal_column("16")
_NODE_COLUMNS = (
    cast(tasks.c.id, Text).label("id_text"),
    cast(tasks.c.project_id, Text).label("project_id_text"),
    cast(tasks.c.parent_id, Text).label("parent_id_text"),
    cast(tasks.c.assignee_id, Text).label("assignee_id_text"),
)
# A trashed task is no node (nothing may sit under it), but stays in its ancestors' subtrees.
_SELECT_NODE = select(*_NODE_COLUMNS).where(
    tasks.c.id == bindparam("task_id"), tasks.c.deleted_at.is_(None)
)

_up = (
    select(tasks.c.parent_id.label("id"), literal_column("1").label("depth"))
    .where(tasks.c.id == bindparam("task_id"), tasks.c.parent_id.is_not(None))
    .cte("up", recursive=True)
)
_up = _up.union_all(
    select(tasks.c.parent_id, _up.c.depth + literal_column("1"))
    .join(_up, tasks.c.id == _up.c.id)
    .where(tasks.c.parent_id.is_not(None), _up.c.depth < _MAX_WALK)
)
_SELECT_ANCESTORS = select(cast(_up.c.id, Text)).order_by(_up.c.depth)

_down = (
    select(tasks.c.id, literal_column("0").label("depth"))
    .where(tasks.c.id == bindparam("task_id"))
    .cte("down", recursive=True)
)
_down = _down.union_all(
    select(tasks.c.id, _down.c.depth + literal_column("1"))
    .join(_down, tasks.c.parent_id == _down.c.id)
    .where(_down.c.depth < _MAX_WALK)
)
_SELECT_SUBTREE = (
    select(*_NODE_COLUMNS).join(_down, tasks.c.id == _down.c.id).order_by(_down.c.depth, tasks.c.id)
)
_SELECT_DESCENDANTS = (
    select(*TASK_COLUMNS)
    .join(_down, tasks.c.id == _down.c.id)
    .where(_down.c.depth > literal_column("0"))
    .order_by(_down.c.depth, tasks.c.id)
)
# Every task of the project, trashed ones too, oldest first.
_TASKS_IN_PROJECT = (
    select(*TASK_COLUMNS)
    .where(tasks.c.project_id == bindparam("project_id"))
    .order_by(tasks.c.created_at, tasks.c.id)
)
_CLEAR_ASSIGNEE = (
    update(tasks)
    .values(
        assignee_id=null(),
        updated_at=bindparam("at", type_=tasks.c.updated_at.type),
        version=tasks.c.version + literal_column("1"),
    )
    .where(
        tasks.c.project_id == bindparam("in_project"),
        tasks.c.assignee_id == bindparam("assignee"),
    )
    .returning(*TASK_COLUMNS)
)


def _node_from_row(row: Sequence[Any]) -> TaskNode:
    return TaskNode(row[0], row[1], row[2], row[3])


class SqlProjectTasks:
    def __init__(self, runner: StatementRunner) -> None:
        self._run = runner

    async def in_project(self, project_id: str) -> list[Task]:
        if not is_canonical_uuid(project_id):
            return []
        rows = await self._run.fetch(_TASKS_IN_PROJECT, {"project_id": project_id})
        return [task_from_row(row) for row in rows]

    async def node(self, task_id: str) -> TaskNode | None:
        if not is_canonical_uuid(task_id):
            return None
        row = await self._run.fetch_one(_SELECT_NODE, {"task_id": task_id})
        return None if row is None else _node_from_row(row)

    async def ancestors(self, task_id: str) -> list[str]:
        if not is_canonical_uuid(task_id):
            return []
        return [row[0] for row in await self._run.fetch(_SELECT_ANCESTORS, {"task_id": task_id})]

    async def subtree(self, task_id: str) -> list[TaskNode]:
        if not is_canonical_uuid(task_id):
            return []
        rows = await self._run.fetch(_SELECT_SUBTREE, {"task_id": task_id})
        return [_node_from_row(row) for row in rows]

    async def subtree_tasks(self, task_id: str) -> list[Task]:
        if not is_canonical_uuid(task_id):
            return []
        rows = await self._run.fetch(_SELECT_DESCENDANTS, {"task_id": task_id})
        return [task_from_row(row) for row in rows]

    async def clear_assignee(self, project_id: str, user_id: str, at: datetime) -> list[Task]:
        if not _both_ids(project_id, user_id):
            return []
        params = {"in_project": project_id, "assignee": user_id, "at": at}
        return [task_from_row(row) for row in await self._run.fetch(_CLEAR_ASSIGNEE, params)]
