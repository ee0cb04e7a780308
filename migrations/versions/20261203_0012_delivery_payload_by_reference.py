"""Webhook deliveries keep their event's payload by reference: `payload` becomes nullable (NULL
while the event's row holds the body), and the indexes narrow to what reads them: pending
deliveries by due time, finished ones by last change, and by-reference ones by event (for the
events purge, which copies the payload in before the event goes).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Written against PostgreSQL and reviewed; partial indexes on both databases, the column change
in batch mode on SQLite. The downgrade first copies every by-reference payload back in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
FINISHED = sa.text("status <> 'pending'")
BY_REFERENCE = sa.text("payload IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_updated_at", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_pending_next_attempt_at_id",
        "webhook_deliveries",
        ["next_attempt_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_webhook_deliveries_finished_updated_at",
        "webhook_deliveries",
        ["updated_at"],
        postgresql_where=FINISHED,
        sqlite_where=FINISHED,
    )
    op.create_index(
        "ix_webhook_deliveries_by_reference_event_id",
        "webhook_deliveries",
        ["event_id"],
        postgresql_where=BY_REFERENCE,
        sqlite_where=BY_REFERENCE,
    )


def downgrade() -> None:
    # The payload as the application builds it from the event's stored body.
    from adapters.sql.events import delivery_payload

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT d.id, e.body FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.payload IS NULL"
        )
    ).all()
    if rows:
        bind.execute(
            sa.text("UPDATE webhook_deliveries SET payload = :payload WHERE id = :id"),
            [{"id": row[0], "payload": delivery_payload(row[1])} for row in rows],
        )
    # A by-reference delivery whose event is gone cannot exist (the purge copies first).
    orphans = "SELECT id FROM webhook_deliveries WHERE payload IS NULL"
    bind.execute(sa.text(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({orphans})"))  # noqa: S608
    bind.execute(sa.text("DELETE FROM webhook_deliveries WHERE payload IS NULL"))
    op.drop_index("ix_webhook_deliveries_by_reference_event_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_finished_updated_at", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_pending_next_attempt_at_id", table_name="webhook_deliveries"
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_webhook_deliveries_updated_at", "webhook_deliveries", ["updated_at"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=False)
