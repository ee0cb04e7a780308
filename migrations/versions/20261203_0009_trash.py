"""The trash: `tasks.deleted_at` and `tasks.trashed_with`, the list indexes over live tasks only,
and the indexes of the trash (its list, the purge, a restore).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Both columns are nullable (NULL: a live task), so adding them rewrites nothing. The four list
indexes (project_id, key, id) are rebuilt as partial indexes `WHERE deleted_at IS NULL` under
their old names: lists never show trashed tasks, and the indexes stay the size of the live
tasks. SQLite supports partial indexes as well. Like the earlier index revisions it builds them
in the migration's transaction (no CONCURRENTLY): writes to `tasks` wait while they build.

Downgrade deletes the trashed tasks for good (lowering their creators' counts), then restores
the full indexes and drops the columns.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.String(length=36), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.String(length=32), "sqlite")
LIVE = sa.text("deleted_at IS NULL")
TRASHED = sa.text("deleted_at IS NOT NULL")
SORT_KEYS = ("created_at", "updated_at", "due_at", "priority")
TRASH_INDEXES = {
    "ix_tasks_project_id_deleted_at_id": ["project_id", "deleted_at", "id"],
    "ix_tasks_deleted_at": ["deleted_at"],
    "ix_tasks_trashed_with": ["trashed_with"],
}


def upgrade() -> None:
    op.add_column("tasks", sa.Column("deleted_at", TIMESTAMP, nullable=True))
    op.add_column("tasks", sa.Column("trashed_with", UUID, nullable=True))
    for key in SORT_KEYS:
        name = f"ix_tasks_project_id_{key}_id"
        op.drop_index(name, table_name="tasks")
        op.create_index(
            name,
            "tasks",
            ["project_id", key, "id"],
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
    for name, columns in TRASH_INDEXES.items():
        op.create_index(name, "tasks", columns, postgresql_where=TRASHED, sqlite_where=TRASHED)


def downgrade() -> None:
    # The counts first (over the trashed tasks as they stand), then the tasks; their subtasks
    # are trashed too, so the cascade removes nothing that was counted as live.
    op.execute(
        "UPDATE task_counts SET n = n - (SELECT count(*) FROM tasks"
        " WHERE tasks.owner_id = task_counts.owner_id AND tasks.deleted_at IS NOT NULL)"
        " WHERE owner_id IN (SELECT owner_id FROM tasks WHERE deleted_at IS NOT NULL)"
    )
    op.execute("DELETE FROM tasks WHERE deleted_at IS NOT NULL")
    for name in TRASH_INDEXES:
        op.drop_index(name, table_name="tasks")
    for key in SORT_KEYS:
        name = f"ix_tasks_project_id_{key}_id"
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", ["project_id", key, "id"])
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("trashed_with")
        batch.drop_column("deleted_at")
