"""A task list with `q` (a substring search, the costly kind) runs in one of the user's search
slots; every transport lists tasks through here."""

from __future__ import annotations

from domain.access import Caller
from domain.errors import RateLimited
from domain.ports import ConcurrencyLimiter
from domain.task_queries import TaskQuery
from domain.use_cases.tasks import ListTasks, TaskPage


async def list_tasks_within_slots(
    slots: ConcurrencyLimiter, list_tasks: ListTasks, caller: Caller, query: TaskQuery
) -> TaskPage:
    """The page; a search (`q`) takes one of the user's slots, `RateLimited` when all are taken."""
    if query.filter.q is None:
        return await list_tasks.execute(caller, query)
    user_id = caller.user_id
    ticket = await slots.acquire(user_id)
    if ticket is None:
        raise RateLimited(
            f"At most {slots.limit} searches (q=) of one user run at once; retry shortly.",
            retry_after=1,
        )
    try:
        return await list_tasks.execute(caller, query)
    finally:
        await slots.release(user_id, ticket)
