"""Project, member and comment use cases. One transaction per call.

Each receives the authenticated caller (`domain.access.Caller`, e.g. a `Principal`), reads the
caller's membership in the same transaction as the change, and asks `POLICY` whether it may act;
none restates who may do what. Ids that are not canonical UUIDs are `NotFound` before any lookup.
Every change records its event on the unit of work (`domain.events`), so it commits with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from domain.access import POLICY, Action, Caller, project_not_found
from domain.comments import Comment, CommentPosition, new_comment
from domain.errors import Conflict, FieldError, FieldErrors, Invalid, NotFound, PreconditionFailed
from domain.events import EventMaker, EventType
from domain.ports import Clock, IdGenerator
from domain.ports.projects import (
    MembershipRepository,
    ProjectRepository,
    ProjectUnitOfWork,
    ProjectUnitOfWorkFactory,
)
from domain.projects import (
    Member,
    Membership,
    Project,
    ProjectDraft,
    ProjectView,
    Role,
    apply_project_changes,
    ensure_deletable,
    ensure_not_member,
    ensure_owner_remains,
    ensure_shareable,
    new_inbox,
    new_project,
    parse_role,
)
from domain.tasks import is_task_id
from domain.users import normalize_email

DEFAULT_COMMENT_PAGE = 50
MAX_COMMENT_PAGE = 200


def _member_not_found(user_id: str) -> NotFound:
    return NotFound(f"member {user_id!r} not found")


def _task_not_found(task_id: str) -> NotFound:
    return NotFound(f"task {task_id!r} not found")


def _comment_not_found(comment_id: str) -> NotFound:
    return NotFound(f"comment {comment_id!r} not found")


async def _access(
    uow: ProjectUnitOfWork, caller: Caller, project_id: str, action: Action
) -> Membership:
    """The caller's membership once the policy allows `action` in the project."""
    if not is_task_id(project_id):
        raise project_not_found(project_id)
    membership = await uow.memberships.get(project_id, caller.user_id)
    return POLICY.require(caller, project_id, membership, action)


async def _project(uow: ProjectUnitOfWork, project_id: str, *, for_update: bool = False) -> Project:
    project = await uow.projects.get(project_id, for_update=for_update)
    if project is None:  # a membership without its project: deleted meanwhile
        raise project_not_found(project_id)
    return project


def _check_version(project: Project, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != project.version:
        raise PreconditionFailed(
            f"version {expected_version} is stale; the project is at version {project.version}"
        )


async def open_inbox(
    projects: ProjectRepository,
    memberships: MembershipRepository,
    *,
    user_id: str,
    project_id: str,
    now: datetime,
) -> Project:
    """The user's inbox: the one they have, else a new one (`project_id`) with the user as its
    only member and owner. Takes repositories, so sign-up can run it in its own transaction."""
    existing = await projects.inbox_of(user_id)
    if existing is not None:
        return existing
    inbox = new_inbox(project_id=project_id, now=now)
    await projects.add(inbox, inbox_of=user_id)
    await memberships.add(Membership(inbox.id, user_id, Role.OWNER, inbox.created_at))
    return inbox


class CreateProject:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, draft: ProjectDraft) -> ProjectView:
        """A new project whose only member, its owner, is the caller. Forbidden without
        `projects:write` or through a restricted key; `Invalid` naming each bad field."""
        POLICY.require_create_project(caller)
        now = self._clock.now()
        project = new_project(project_id=self._ids.new_id(), draft=draft, now=now)
        make = EventMaker(self._ids.new_id, caller, now)
        async with self._uow_factory() as uow:
            await uow.projects.add(project)
            await uow.memberships.add(Membership(project.id, caller.user_id, Role.OWNER, now))
            await uow.events.append(make.project(EventType.PROJECT_CREATED, project))
            await uow.commit()
        return ProjectView(project, Role.OWNER)


class ListProjects:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller) -> list[ProjectView]:
        """The caller's projects (those its key reaches), oldest first, with its role."""
        POLICY.require_list_projects(caller)
        async with self._uow_factory() as uow:
            return await uow.projects.list_for_user(caller.user_id, caller.project_ids)


class GetProject:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller, project_id: str) -> ProjectView:
        async with self._uow_factory() as uow:
            membership = await _access(uow, caller, project_id, Action.READ_PROJECT)
            return ProjectView(await _project(uow, project_id), membership.role)


class UpdateProject:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, *, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(
        self,
        caller: Caller,
        project_id: str,
        changes: Mapping[str, object],
        expected_version: int | None = None,
    ) -> ProjectView:
        """The project after a merge patch (owner only). Checked in order: access, then
        `PreconditionFailed` for a stale `expected_version`, then `Invalid` for the patch. A
        patch that changes nothing writes nothing. Losing a race: `PreconditionFailed` when a
        version was expected, else `Conflict`."""
        async with self._uow_factory() as uow:
            membership = await _access(uow, caller, project_id, Action.MANAGE_PROJECT)
            project = await _project(uow, project_id)
            _check_version(project, expected_version)
            now = self._clock.now()
            updated = apply_project_changes(project, changes, now)
            if updated is not project:
                if not await uow.projects.update(updated, project.version):
                    if expected_version is not None:
                        raise PreconditionFailed("the project was changed meanwhile")
                    raise Conflict("the project was changed concurrently; read it again")
                make = EventMaker(self._ids.new_id, caller, now)
                await uow.events.append(
                    make.project(EventType.PROJECT_UPDATED, updated, before=project)
                )
                await uow.commit()
        return ProjectView(updated, membership.role)


class DeleteProject:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, *, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(
        self, caller: Caller, project_id: str, expected_version: int | None = None
    ) -> None:
        """Delete the project for good with its tasks and comments (owner only; an inbox is a
        `Conflict`; a stale `expected_version` is `PreconditionFailed`). One event per resource
        that goes (each task `task.purged`, each comment `comment.deleted`, each member
        `member.removed`, then `project.deleted`), each to everyone who was a member (none of
        them can read the project afterwards)."""
        make = EventMaker(self._ids.new_id, caller, self._clock.now())
        async with self._uow_factory() as uow:
            await _access(uow, caller, project_id, Action.MANAGE_PROJECT)
            project = await _project(uow, project_id, for_update=True)
            _check_version(project, expected_version)
            ensure_deletable(project)
            members = await uow.memberships.list_members(project_id)
            audience = frozenset(m.membership.user_id for m in members)
            gone_tasks = await uow.project_tasks.in_project(project_id)
            gone_comments = await uow.comments.in_project(project_id)
            await uow.projects.delete(project_id)
            cascade = [
                *(make.task(EventType.TASK_PURGED, task) for task in gone_tasks),
                *(make.comment(EventType.COMMENT_DELETED, c, project_id) for c in gone_comments),
                *(make.member(EventType.MEMBER_REMOVED, member) for member in members),
            ]
            await uow.events.append(
                *(replace(event, audience=audience) for event in cascade),
                make.project(EventType.PROJECT_DELETED, project, audience=audience),
            )
            await uow.commit()


class ListMembers:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller, project_id: str) -> list[Member]:
        """Every member, owners first, then by `added_at`."""
        async with self._uow_factory() as uow:
            await _access(uow, caller, project_id, Action.READ_PROJECT)
            return await uow.memberships.list_members(project_id)


async def _member(uow: ProjectUnitOfWork, project_id: str, user_id: str) -> Member:
    member = await uow.memberships.get_member(project_id, user_id)
    if member is None:
        raise _member_not_found(user_id)
    return member


class AddMember:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, *, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, project_id: str, email: object, role: object) -> Member:
        """Add the user with this e-mail (owner only). Checked in order: access; an inbox is a
        `Conflict`; `Invalid` on `email` (malformed or no such user) and `role`; a user who is
        already a member is a `Conflict`."""
        async with self._uow_factory() as uow:
            await _access(uow, caller, project_id, Action.MANAGE_MEMBERS)
            ensure_shareable(await _project(uow, project_id, for_update=True))
            errors = FieldErrors()
            parsed_role = errors.take(None, parse_role, role)
            user = None
            canonical = errors.take(None, lambda: normalize_email(_text(email, "email")))
            if canonical is not None:
                user = await uow.users.get_by_email(canonical)
                if user is None:
                    errors.errors.append(FieldError("email", "no user has this e-mail address"))
            errors.raise_if_any("invalid member fields")
            # Both are set whenever no field error was raised.
            assert user is not None
            assert parsed_role is not None
            ensure_not_member(await uow.memberships.get(project_id, user.id))
            now = self._clock.now()
            membership = Membership(project_id, user.id, parsed_role, now)
            await uow.memberships.add(membership)
            member = Member(membership, user.email, user.name)
            make = EventMaker(self._ids.new_id, caller, now)
            await uow.events.append(make.member(EventType.MEMBER_ADDED, member))
            await uow.commit()
        return member


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise Invalid.of(field, "must be a string")
    return value


class UpdateMember:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, *, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, project_id: str, user_id: str, role: object) -> Member:
        """Change a member's role (owner only). `Invalid` on `role`; `NotFound` for a user who
        is not a member; demoting the last owner is a `Conflict`."""
        async with self._uow_factory() as uow:
            await _access(uow, caller, project_id, Action.MANAGE_MEMBERS)
            new_role = parse_role(role)
            await _project(uow, project_id, for_update=True)
            target = await uow.memberships.get(project_id, user_id)
            if target is None:
                raise _member_not_found(user_id)
            if target.role is new_role:
                return await _member(uow, project_id, user_id)
            ensure_owner_remains(target, new_role, await uow.memberships.count_owners(project_id))
            await uow.memberships.set_role(project_id, user_id, new_role)
            member = await _member(uow, project_id, user_id)
            before = Member(target, member.email, member.name)
            make = EventMaker(self._ids.new_id, caller, self._clock.now())
            await uow.events.append(make.member(EventType.MEMBER_UPDATED, member, before=before))
            await uow.commit()
        return member


class RemoveMember:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, *, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, project_id: str, user_id: str) -> None:
        """Remove a member: an owner removes anyone, any member removes themself. The last
        owner cannot leave (`Conflict`). The removed user's assignments in the project are
        cleared in the same transaction."""
        async with self._uow_factory() as uow:
            if not is_task_id(project_id):
                raise project_not_found(project_id)
            membership = await uow.memberships.get(project_id, caller.user_id)
            POLICY.require_remove_member(caller, project_id, membership, user_id)
            await _project(uow, project_id, for_update=True)
            member = await uow.memberships.get_member(project_id, user_id)
            if member is None:
                raise _member_not_found(user_id)
            target = member.membership
            ensure_owner_remains(target, None, await uow.memberships.count_owners(project_id))
            now = self._clock.now()
            await uow.memberships.remove(project_id, user_id)
            unassigned = await uow.project_tasks.clear_assignee(project_id, user_id, now)
            make = EventMaker(self._ids.new_id, caller, now)
            # One event per changed resource: the membership, and each task it was assigned.
            await uow.events.append(
                make.member(EventType.MEMBER_REMOVED, member),
                *(
                    make.task(EventType.TASK_UPDATED, task, replace(task, assignee_id=user_id))
                    for task in unassigned
                ),
            )
            await uow.commit()


async def _task_access(
    uow: ProjectUnitOfWork, caller: Caller, task_id: str, action: Action
) -> tuple[str, Membership | None]:
    """The project of a live task, once the caller may at least read it; for `action` other
    than reading, also checked for that action. NotFound names the task, never its project."""
    if not is_task_id(task_id):
        raise _task_not_found(task_id)
    node = await uow.project_tasks.node(task_id)
    if node is None:
        raise _task_not_found(task_id)
    membership = await uow.memberships.get(node.project_id, caller.user_id)
    POLICY.require(caller, node.project_id, membership, action, not_found=_task_not_found(task_id))
    return node.project_id, membership


class CreateComment:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, task_id: str, body: object) -> Comment:
        """A comment by the caller on a live task (editor or owner). `Invalid` on `body`."""
        async with self._uow_factory() as uow:
            project_id, _ = await _task_access(uow, caller, task_id, Action.WRITE_COMMENTS)
            comment = new_comment(
                comment_id=self._ids.new_id(),
                task_id=task_id,
                author_id=caller.user_id,
                body=body,
                now=self._clock.now(),
            )
            await uow.comments.add(comment)
            make = EventMaker(self._ids.new_id, caller, comment.created_at)
            await uow.events.append(make.comment(EventType.COMMENT_CREATED, comment, project_id))
            await uow.commit()
        return comment


@dataclass(frozen=True, slots=True)
class CommentPage:
    """One page of comments; `next_position` is None on the last page."""

    items: tuple[Comment, ...]
    next_position: CommentPosition | None


class ListComments:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self,
        caller: Caller,
        task_id: str,
        after: CommentPosition | None = None,
        limit: int = DEFAULT_COMMENT_PAGE,
    ) -> CommentPage:
        """Up to `limit` (1-200, else `Invalid` on `limit`) comments of a live task, oldest
        first, after `after`, and where the next page starts."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_COMMENT_PAGE:
            raise Invalid.of("limit", f"must be between 1 and {MAX_COMMENT_PAGE}")
        async with self._uow_factory() as uow:
            await _task_access(uow, caller, task_id, Action.READ_TASKS)
            rows = await uow.comments.list_page(task_id, after, limit=limit + 1)
        items = tuple(rows[:limit])
        more = len(rows) > limit
        return CommentPage(items, CommentPosition.of(items[-1]) if more else None)


class DeleteComment:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, *, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, task_id: str, comment_id: str) -> None:
        """Delete a comment: its author (editor or owner) or an owner of the project. A comment
        of another task, or one the caller cannot read, is `NotFound`."""
        async with self._uow_factory() as uow:
            project_id, membership = await _task_access(uow, caller, task_id, Action.READ_TASKS)
            comment = (
                await uow.comments.get(task_id, comment_id) if is_task_id(comment_id) else None
            )
            if comment is None:
                raise _comment_not_found(comment_id)
            POLICY.require_delete_comment(caller, project_id, membership, comment.author_id)
            await uow.comments.delete(comment_id)
            make = EventMaker(self._ids.new_id, caller, self._clock.now())
            await uow.events.append(make.comment(EventType.COMMENT_DELETED, comment, project_id))
            await uow.commit()


class CreateInbox:
    def __init__(
        self, uow_factory: ProjectUnitOfWorkFactory, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, user_id: str) -> Project:
        """The user's inbox, made if it does not exist yet (sign-up calls `open_inbox` in its
        own transaction instead; this serves a user who has none)."""
        async with self._uow_factory() as uow:
            inbox = await open_inbox(
                uow.projects,
                uow.memberships,
                user_id=user_id,
                project_id=self._ids.new_id(),
                now=self._clock.now(),
            )
            await uow.commit()
        return inbox


class MemberProjects:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, user_id: str) -> frozenset[str]:
        """The ids of every project the user is a member of (any role): what a key restricted
        to projects may name."""
        async with self._uow_factory() as uow:
            return frozenset(m.project_id for m in await uow.memberships.for_user(user_id))
