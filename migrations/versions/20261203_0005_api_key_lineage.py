"""API key lineage: `api_keys.created_by_key_id`, the key that issued a key (null when a
session, the service token or the CLI issued it), indexed for revoking a key's descendants.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Written against PostgreSQL and reviewed; batch mode rebuilds the table on SQLite, which cannot
add a foreign key to an existing table. Existing keys get null: their issuer was not recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.String(length=36), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("created_by_key_id", UUID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_created_by_key_id_api_keys"),
            "api_keys",
            ["created_by_key_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(
            op.f("ix_api_keys_created_by_key_id"), ["created_by_key_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(op.f("ix_api_keys_created_by_key_id"))
        batch.drop_constraint(op.f("fk_api_keys_created_by_key_id_api_keys"), type_="foreignkey")
        batch.drop_column("created_by_key_id")
