"""The worker's schedule (`worker_jobs`: one row per periodic job, its lease and last success),
and indexes on `sessions.expires_at` / `revoked_at` for the purge of sessions past use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Written against PostgreSQL and reviewed; plain CREATE TABLE / CREATE INDEX on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True).with_variant(sa.String(length=32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "worker_jobs",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("next_run_at", UTC_DATETIME, nullable=False),
        sa.Column("leased_by", sa.String(length=200), nullable=True),
        sa.Column("leased_until", UTC_DATETIME, nullable=True),
        sa.Column("last_success_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_jobs")),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_sessions_revoked_at"), "sessions", ["revoked_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_revoked_at"), table_name="sessions")
    op.drop_index(op.f("ix_sessions_expires_at"), table_name="sessions")
    op.drop_table("worker_jobs")
