"""The event log (`events`: every change's event, written with the change) and the retention
horizon (`event_horizon`: the newest feed position the retention job deleted).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03

Written against PostgreSQL and reviewed; plain CREATE TABLE / CREATE INDEX on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True).with_variant(sa.String(length=32), "sqlite")
UUID_TEXT = sa.Uuid(as_uuid=False).with_variant(sa.String(length=36), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("id", UUID_TEXT, nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("project_id", UUID_TEXT, nullable=True),
        sa.Column("resource_type", sa.String(length=20), nullable=False),
        sa.Column("resource_id", UUID_TEXT, nullable=False),
        sa.Column("audience", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_occurred_at"), "events", ["occurred_at"], unique=False)
    op.create_index("ix_events_txid_seq", "events", ["txid", "seq"], unique=False)
    op.create_index("ix_events_project_id_seq", "events", ["project_id", "seq"], unique=False)
    op.create_index("ix_events_resource_id_seq", "events", ["resource_id", "seq"], unique=False)
    op.create_table(
        "event_horizon",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_horizon")),
    )


def downgrade() -> None:
    op.drop_table("event_horizon")
    op.drop_index("ix_events_resource_id_seq", table_name="events")
    op.drop_index("ix_events_project_id_seq", table_name="events")
    op.drop_index("ix_events_txid_seq", table_name="events")
    op.drop_index(op.f("ix_events_occurred_at"), table_name="events")
    op.drop_table("events")
