"""Reading events: a task's or a project's activity, and the change feed.

Activity is a cursor list, oldest first, of the events of one task (also while it is in the
trash: the task's project is where its newest event puts it) or of one project; any member may
read it. The change feed (`GET /v1/changes`) is every event of the projects the caller (and its
key) can read now, in commit order, from a position on; it needs `tasks:read` and
`projects:read`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.access import POLICY, Action, Caller, project_not_found, require_scope
from domain.auth import Scope
from domain.errors import Invalid, NotFound
from domain.events import EventType
from domain.ports.events import ActivityItem, EventFeed, FeedReader
from domain.ports.feed import FeedItem
from domain.ports.projects import ProjectUnitOfWorkFactory
from domain.tasks import is_task_id

DEFAULT_ACTIVITY_PAGE = 50
MAX_ACTIVITY_PAGE = 200
DEFAULT_FEED_PAGE = 100
MAX_FEED_PAGE = 500
NOW = "now"


def _task_not_found(task_id: str) -> NotFound:
    return NotFound(f"task {task_id!r} not found")


def _check_limit(limit: int, most: int) -> None:
    if isinstance(limit, bool) or not 1 <= limit <= most:
        raise Invalid.of("limit", f"must be between 1 and {most}")


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of activity, oldest first; `next_after` is None on the last page."""

    items: tuple[Mapping[str, object], ...]
    next_after: int | None


def _page(rows: list[ActivityItem], limit: int) -> ActivityPage:
    items = rows[:limit]
    more = len(rows) > limit
    return ActivityPage(tuple(i.body for i in items), items[-1].seq if more else None)


class ListTaskActivity:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self,
        caller: Caller,
        task_id: str,
        after: int | None = None,
        limit: int = DEFAULT_ACTIVITY_PAGE,
    ) -> ActivityPage:
        """The task's events after `after`, for a member of its project (tasks:read). A task
        that never existed, is purged, or sits in a project the caller cannot read is
        `NotFound`."""
        _check_limit(limit, MAX_ACTIVITY_PAGE)
        if not is_task_id(task_id):
            raise _task_not_found(task_id)
        async with self._uow_factory() as uow:
            node = await uow.project_tasks.node(task_id)
            project_id = node.project_id if node is not None else None
            if project_id is None:
                latest = await uow.events.latest_of_task(task_id)
                if latest is not None and latest.type != EventType.TASK_PURGED.value:
                    project_id = latest.project_id
            if project_id is None:
                raise _task_not_found(task_id)
            membership = await uow.memberships.get(project_id, caller.user_id)
            POLICY.require(
                caller,
                project_id,
                membership,
                Action.READ_TASKS,
                not_found=_task_not_found(task_id),
            )
            rows = await uow.events.task_activity(task_id, after, limit + 1)
        return _page(rows, limit)


class ListProjectActivity:
    def __init__(self, uow_factory: ProjectUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self,
        caller: Caller,
        project_id: str,
        after: int | None = None,
        limit: int = DEFAULT_ACTIVITY_PAGE,
    ) -> ActivityPage:
        """Every event of the project after `after`, for a member (tasks:read)."""
        _check_limit(limit, MAX_ACTIVITY_PAGE)
        if not is_task_id(project_id):
            raise project_not_found(project_id)
        async with self._uow_factory() as uow:
            membership = await uow.memberships.get(project_id, caller.user_id)
            POLICY.require(caller, project_id, membership, Action.READ_TASKS)
            rows = await uow.events.project_activity(project_id, after, limit + 1)
        return _page(rows, limit)


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """Events in commit order and the position to read on from (never None)."""

    items: tuple[FeedItem, ...]
    next_position: str


def feed_reader(caller: Caller) -> FeedReader:
    """Whose change feed: the projects where the caller may read tasks, narrowed to its key's."""
    require_scope(caller, Scope.TASKS_READ)
    require_scope(caller, Scope.PROJECTS_READ)
    return FeedReader(caller.user_id, POLICY.roles_allowing(Action.READ_TASKS), caller.project_ids)


class ReadChanges:
    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed

    async def execute(
        self, caller: Caller, after: str | None = None, limit: int = DEFAULT_FEED_PAGE
    ) -> ChangesPage:
        """Up to `limit` (1-500) events after `after` (a position the feed gave, or "now";
        None: from the oldest kept). Forbidden without both scopes; `Invalid` on `after` for
        a string that is no position; `CursorExpired` for one older than what is kept."""
        reader = feed_reader(caller)
        _check_limit(limit, MAX_FEED_PAGE)
        position = await self.start(after)
        try:
            items, next_position = await self._feed.read_after(position, limit, reader)
        except ValueError:
            raise Invalid.of("after", "is not a cursor of this feed") from None
        return ChangesPage(tuple(items), next_position)

    async def start(self, after: str | None) -> str | None:
        """The position `after` names ("now": after every event committed so far)."""
        if after == NOW:
            return await self._feed.now()
        return after
