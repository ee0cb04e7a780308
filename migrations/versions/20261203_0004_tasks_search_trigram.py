"""Trigram GIN indexes on the folded title and description, so `q` is index-backed (PostgreSQL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

`q` matches `title_folded LIKE '%needle%' OR description_folded LIKE '%needle%'`; a btree cannot
serve an unanchored LIKE, a pg_trgm GIN index can (for needles of three characters or more).
The migration creates the pg_trgm extension when the database lacks it (a trusted extension:
the database owner may create it) and names its operator class by the extension's schema, so
the indexes build whatever the search_path. The downgrade drops the indexes and keeps the
extension, which other schemas of the database may use. SQLite has nothing to do here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEXES = {
    "ix_tasks_title_folded_trgm": "title_folded",
    "ix_tasks_description_folded_trgm": "description_folded",
}


def _on_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _operator_class() -> str:
    """`gin_trgm_ops`, qualified by the schema pg_trgm lives in (unknown when offline)."""
    if context.is_offline_mode():
        return "gin_trgm_ops"
    schema = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT quote_ident(nspname) FROM pg_extension"
                " JOIN pg_namespace ON pg_namespace.oid = extnamespace"
                " WHERE extname = 'pg_trgm'"
            )
        )
        .scalar_one()
    )
    return f"{schema}.gin_trgm_ops"


def upgrade() -> None:
    if not _on_postgresql():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    operator_class = _operator_class()
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks USING gin ({column} {operator_class})")


def downgrade() -> None:
    if not _on_postgresql():
        return
    for name in TRIGRAM_INDEXES:
        op.drop_index(name, table_name="tasks")
