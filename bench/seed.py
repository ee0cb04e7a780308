"""Seed one user's tasks straight into Taskhub's `tasks` table with asyncpg COPY.

The tasks go into a project shared with other members (`create_shared_project`, rows as
Taskhub's project adapter writes them: the owner plus editors), or into the user's inbox (sign-up
made it) when no project is given; about a third are assigned to the user
and about a fifth are subtasks of an earlier task (one level, so the tree rules hold).

Rows look like what Taskhub's SQL adapter writes (adapters.sql.tasks.task_to_row): UUIDv7 ids
whose embedded time is the row's created_at, trimmed titles, distinct labels in a text[],
`completed_at` exactly when status is done, version 1 (or more once "edited"), and the
`title_folded` / `description_folded` search columns (str.casefold). Creation times are spread
over the past ~35 days, so every task created during a run is newer than all seeded ones (and
`reset_tasks` can remove them by time). Both set the owner's row of `task_counts` (the count the
per-owner task cap checks) to the number of tasks the owner then holds, as Taskhub's own writes
keep it.

Usage: python -m bench.seed DSN OWNER_ID [--count 10000] [--member USER_ID ...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import uuid_utils

COLUMNS = (
    "id",
    "owner_id",
    "project_id",
    "parent_id",
    "assignee_id",
    "title",
    "description",
    "status",
    "priority",
    "labels",
    "due_at",
    "completed_at",
    "created_at",
    "updated_at",
    "version",
    "title_folded",
    "description_folded",
)
_VERBS = ("Write", "Review", "Fix", "Plan", "Call", "Ship", "Test", "Refactor", "Document", "Order")
_THINGS = (
    "the quarterly report",
    "the login flow",
    "Ünïcode handling in search",
    "the onboarding checklist",
    "invoice #{n}",
    "the staging database",
    "release notes",
    "the team offsite",
    "flaky CI job {n}",
    "customer feedback",
)
_LABELS = ("work", "home", "urgent", "backend", "frontend", "ops", "q3", "q4", "waiting", "idea")
_SPACING = timedelta(minutes=5)
# The owner's count set to what the tasks table holds (seeding and resetting bypass Taskhub).
RECOUNT = (
    "INSERT INTO task_counts (owner_id, n) SELECT $1, count(*) FROM tasks WHERE owner_id = $1 "
    "ON CONFLICT (owner_id) DO UPDATE SET n = excluded.n"
)


def task_rows(
    owner_id: str, project_id: str, count: int, *, now: datetime, seed: int = 7
) -> list[tuple[Any, ...]]:
    """`count` deterministic task rows for `owner_id` in `project_id`, oldest first, the newest
    ~1 h before now."""
    rng = random.Random(seed)
    owner, project = uuid.UUID(owner_id), uuid.UUID(project_id)
    top_level: list[uuid.UUID] = []
    start = now - timedelta(hours=1) - _SPACING * count
    rows: list[tuple[Any, ...]] = []
    for n in range(count):
        created = start + _SPACING * n + timedelta(microseconds=rng.randrange(1_000_000))
        task_id = uuid.UUID(str(uuid_utils.uuid7(nanoseconds=int(created.timestamp() * 1e9))))
        title = f"{rng.choice(_VERBS)} {rng.choice(_THINGS).format(n=n)}"
        description = None
        if rng.random() < 0.6:
            description = " ".join(
                f"Step {i}: check the details with the team and note the outcome."
                for i in range(1, rng.randint(2, 5))
            )
        status = rng.choices(("todo", "in_progress", "done"), weights=(5, 2, 3))[0]
        edited = rng.random() < 0.4
        updated = created
        if edited:
            later = created + timedelta(hours=rng.randint(1, 48))
            updated = max(min(later, now - timedelta(minutes=45)), created)
        due = created + timedelta(days=rng.randint(1, 30)) if rng.random() < 0.5 else None
        labels = rng.sample(_LABELS, rng.randint(0, 3))
        parent = rng.choice(top_level) if top_level and rng.random() < 0.2 else None
        if parent is None:
            top_level.append(task_id)
        rows.append(
            (
                task_id,
                owner,
                project,
                parent,
                owner if rng.random() < 0.3 else None,
                title,
                description,
                status,
                rng.randint(1, 4),
                labels,
                due,
                updated if status == "done" else None,
                created,
                updated,
                rng.randint(2, 4) if edited else 1,
                title.casefold(),
                None if description is None else description.casefold(),
            )
        )
    return rows


async def create_shared_project(
    dsn: str, owner_id: str, member_ids: list[str], name: str = "Bench project"
) -> str:
    """A (non-inbox) project owned by `owner_id` with `member_ids` as editors; its id."""
    project = uuid.UUID(str(uuid_utils.uuid7()))
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO projects (id, name, inbox, inbox_owner_id, created_at, updated_at, "
                "version) VALUES ($1, $2, false, NULL, now(), now(), 1)",
                project,
                name,
            )
            await connection.executemany(
                "INSERT INTO project_members (project_id, user_id, role, added_at) "
                "VALUES ($1, $2, $3, now())",
                [(project, uuid.UUID(owner_id), "owner")]
                + [(project, uuid.UUID(member), "editor") for member in member_ids],
            )
    finally:
        await connection.close()
    return str(project)


async def seed_tasks(
    dsn: str, owner_id: str, count: int, project_id: str | None = None
) -> tuple[list[str], datetime]:
    """Insert `count` tasks for `owner_id` into `project_id` (default: the inbox); their ids and
    the time after which rows are new."""
    now = datetime.now(UTC)
    connection = await asyncpg.connect(dsn)
    try:
        if project_id is None:
            inbox = await connection.fetchval(
                "SELECT id FROM projects WHERE inbox_owner_id = $1", uuid.UUID(owner_id)
            )
            if inbox is None:
                raise SystemExit(f"user {owner_id} has no inbox: create users through Taskhub")
            project_id = str(inbox)
        rows = task_rows(owner_id, project_id, count, now=now)
        async with connection.transaction():
            await connection.copy_records_to_table("tasks", records=rows, columns=COLUMNS)
            await connection.execute(RECOUNT, uuid.UUID(owner_id))
        await connection.execute("VACUUM ANALYZE tasks")
    finally:
        await connection.close()
    cutoff = now - timedelta(minutes=30)
    return [str(row[0]) for row in rows], cutoff


async def reset_tasks(dsn: str, owner_id: str, cutoff: datetime) -> int:
    """Delete `owner_id`'s tasks created after `cutoff` (those a POST run added); vacuum."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            status = await connection.execute(
                "DELETE FROM tasks WHERE owner_id = $1 AND created_at > $2",
                uuid.UUID(owner_id),
                cutoff,
            )
            await connection.execute(RECOUNT, uuid.UUID(owner_id))
        await connection.execute("VACUUM ANALYZE tasks")
    finally:
        await connection.close()
    return int(status.split()[-1])


async def seed_population(
    dsn: str, users: int, tasks: int, *, tag: str, members: int = 5, batch: int = 100
) -> list[str]:
    """`users` more users (each with an inbox, emails tagged `tag`), in shared projects of
    `members` (the first as owner, the rest editors), holding `tasks` tasks between them, each
    user's in their shared project; COPY in batches of `batch` users. Their ids."""
    now = datetime.now(UTC)
    ids = [uuid.UUID(str(uuid_utils.uuid7())) for _ in range(users)]
    per_user = [tasks // users + (1 if n < tasks % users else 0) for n in range(users)]
    connection = await asyncpg.connect(dsn)
    try:
        user_rows = [
            (user, f"{tag}-{n}@example.com", f"{tag}-{n}@example.com", "!", now)
            for n, user in enumerate(ids)
        ]
        projects: list[tuple[Any, ...]] = []
        memberships: list[tuple[Any, ...]] = []
        shared_of: dict[uuid.UUID, uuid.UUID] = {}
        for n, user in enumerate(ids):
            inbox = uuid.UUID(str(uuid_utils.uuid7()))
            projects.append((inbox, "Inbox", True, user, now, now, 1))
            memberships.append((inbox, user, "owner", now))
            if n % members == 0:
                shared = uuid.UUID(str(uuid_utils.uuid7()))
                projects.append((shared, f"Shared {n // members}", False, None, now, now, 1))
            shared_of[user] = shared
            memberships.append((shared, user, "owner" if n % members == 0 else "editor", now))
        async with connection.transaction():
            await connection.copy_records_to_table(
                "users",
                records=user_rows,
                columns=("id", "email", "email_key", "password_hash", "created_at"),
            )
            await connection.copy_records_to_table(
                "projects",
                records=projects,
                columns=(
                    "id", "name", "inbox", "inbox_owner_id", "created_at", "updated_at", "version"
                ),
            )  # fmt: skip
            await connection.copy_records_to_table(
                "project_members",
                records=memberships,
                columns=("project_id", "user_id", "role", "added_at"),
            )
        for start in range(0, users, batch):
            rows: list[tuple[Any, ...]] = []
            for n in range(start, min(start + batch, users)):
                user = ids[n]
                rows += task_rows(str(user), str(shared_of[user]), per_user[n], now=now, seed=n)
            async with connection.transaction():
                await connection.copy_records_to_table("tasks", records=rows, columns=COLUMNS)
        await connection.execute(
            "INSERT INTO task_counts (owner_id, n) SELECT owner_id, count(*) FROM tasks "
            "WHERE owner_id = ANY($1::uuid[]) GROUP BY owner_id "
            "ON CONFLICT (owner_id) DO UPDATE SET n = excluded.n",
            ids,
        )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return [str(user) for user in ids]


async def delete_population(dsn: str, user_ids: list[str]) -> None:
    """Remove what `seed_population` made for `user_ids`."""
    ids = [uuid.UUID(user) for user in user_ids]
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            projects = await connection.fetch(
                "SELECT DISTINCT project_id FROM project_members WHERE user_id = ANY($1::uuid[])",
                ids,
            )
            await connection.execute("DELETE FROM tasks WHERE owner_id = ANY($1::uuid[])", ids)
            await connection.execute(
                "DELETE FROM task_counts WHERE owner_id = ANY($1::uuid[])", ids
            )
            project_ids = [row[0] for row in projects]
            await connection.execute(
                "DELETE FROM project_members WHERE project_id = ANY($1::uuid[])", project_ids
            )
            await connection.execute("DELETE FROM projects WHERE id = ANY($1::uuid[])", project_ids)
            await connection.execute("DELETE FROM users WHERE id = ANY($1::uuid[])", ids)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn", help="postgresql://user@host:port/db (plain asyncpg DSN)")
    parser.add_argument("owner_id", help="an existing users.id")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--member", action="append", default=[], help="share a new project with this user"
    )
    args = parser.parse_args()
    project = None
    if args.member:
        project = asyncio.run(create_shared_project(args.dsn, args.owner_id, args.member))
    ids, _ = asyncio.run(seed_tasks(args.dsn, args.owner_id, args.count, project))
    print(f"seeded {len(ids)} tasks for {args.owner_id}")


if __name__ == "__main__":
    main()
