"""Task counts: `task_counts`, how many tasks each owner holds, for the per-owner task cap
(MAX_TASKS_PER_USER). The statements that insert and delete a task keep it exact; this revision
fills it from the tasks that exist.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Written against PostgreSQL and reviewed. The backfill runs inside the migration's transaction;
on PostgreSQL the table is locked against writers first, so no task written meanwhile is missed
by the count (with the service stopped during migrations the lock costs nothing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.String(length=36), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("owner_id", UUID, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 0", name=op.f("ck_task_counts_n")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_task_counts_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_task_counts")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute("LOCK TABLE tasks IN SHARE MODE")
    op.execute(
        "INSERT INTO task_counts (owner_id, n) "
        "SELECT owner_id, count(*) FROM tasks GROUP BY owner_id"
    )


def downgrade() -> None:
    op.drop_table("task_counts")
