"""Projects: `projects`, `project_members`, `comments`, `api_keys.project_ids`, and tasks placed
in projects (`project_id`, `parent_id`, `assignee_id`). Every user gets an inbox that holds their
existing tasks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Written against PostgreSQL and reviewed; batch mode rebuilds `tasks` and `api_keys` on SQLite
(which cannot add a foreign key or a NOT NULL to an existing table). At most one inbox per user:
`projects.inbox_owner_id` is unique and set exactly on inboxes. The task list's sort indexes move
from (owner_id, key, id) to (project_id, key, id); owner_id keeps a plain index.

Downgrade restores the old shape: tasks keep their creator (`owner_id`), every project, member,
comment and key restriction is dropped.
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID as PyUUID

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.String(length=36), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.String(length=32), "sqlite")
# text[] on PostgreSQL, a JSON array as text on SQLite (adapters.sql.types.TEXT_LIST).
TEXT_LIST = postgresql.ARRAY(sa.Text()).with_variant(sa.Text(), "sqlite")

OWNER_SORT_INDEXES = {
    "ix_tasks_owner_id_created_at_id": ["owner_id", "created_at", "id"],
    "ix_tasks_owner_id_updated_at_id": ["owner_id", "updated_at", "id"],
    "ix_tasks_owner_id_due_at_id": ["owner_id", "due_at", "id"],
    "ix_tasks_owner_id_priority_id": ["owner_id", "priority", "id"],
}
PROJECT_SORT_INDEXES = {
    "ix_tasks_project_id_created_at_id": ["project_id", "created_at", "id"],
    "ix_tasks_project_id_updated_at_id": ["project_id", "updated_at", "id"],
    "ix_tasks_project_id_due_at_id": ["project_id", "due_at", "id"],
    "ix_tasks_project_id_priority_id": ["project_id", "priority", "id"],
}
TASK_INDEXES = {
    "ix_tasks_owner_id": ["owner_id"],
    "ix_tasks_parent_id": ["parent_id"],
    "ix_tasks_assignee_id": ["assignee_id"],
    **PROJECT_SORT_INDEXES,
}
TASK_FOREIGN_KEYS = {
    "fk_tasks_project_id_projects": ("project_id", "projects", "CASCADE"),
    "fk_tasks_parent_id_tasks": ("parent_id", "tasks", "CASCADE"),
    "fk_tasks_assignee_id_users": ("assignee_id", "users", "SET NULL"),
}
INBOXES_PER_BATCH = 1000


def _uuid7(at: datetime) -> str:
    """A UUID version 7 for a row made now (milliseconds of `at`, then random bits)."""
    millis = int(at.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(PyUUID(int=value))


def _create_tables() -> None:
    op.create_table(
        "projects",
        sa.Column("id", UUID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("inbox", sa.Boolean(), nullable=False),
        sa.Column("inbox_owner_id", UUID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "inbox = (inbox_owner_id IS NOT NULL)", name=op.f("ck_projects_inbox_owner")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_projects_version")),
        sa.ForeignKeyConstraint(
            ["inbox_owner_id"],
            ["users.id"],
            name=op.f("fk_projects_inbox_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("inbox_owner_id", name=op.f("uq_projects_inbox_owner_id")),
    )
    op.create_table(
        "project_members",
        sa.Column("project_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'editor', 'viewer')", name=op.f("ck_project_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_members_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_project_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_members")),
    )
    op.create_index(op.f("ix_project_members_user_id"), "project_members", ["user_id"])


def _open_inboxes() -> None:
    """An inbox (owner membership included) for every user, holding all of the user's tasks."""
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    now = datetime.now(UTC)
    stamp: object = now.isoformat(timespec="microseconds") if sqlite else now
    projects = sa.table(
        "projects",
        sa.column("id"),
        sa.column("name"),
        sa.column("description"),
        sa.column("inbox", sa.Boolean()),
        sa.column("inbox_owner_id"),
        sa.column("created_at"),
        sa.column("updated_at"),
        sa.column("version"),
    )
    members = sa.table(
        "project_members",
        sa.column("project_id"),
        sa.column("user_id"),
        sa.column("role"),
        sa.column("added_at"),
    )
    user_ids = [str(row[0]) for row in conn.execute(sa.text("SELECT id FROM users"))]
    for start in range(0, len(user_ids), INBOXES_PER_BATCH):
        batch = user_ids[start : start + INBOXES_PER_BATCH]
        inboxes = [(_uuid7(now), user_id) for user_id in batch]
        conn.execute(
            projects.insert(),
            [
                {
                    "id": project_id,
                    "name": "Inbox",
                    "description": None,
                    "inbox": True,
                    "inbox_owner_id": user_id,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "version": 1,
                }
                for project_id, user_id in inboxes
            ],
        )
        conn.execute(
            members.insert(),
            [
                {"project_id": project_id, "user_id": user_id, "role": "owner", "added_at": stamp}
                for project_id, user_id in inboxes
            ],
        )
    conn.execute(
        sa.text(
            "UPDATE tasks SET project_id = "
            "(SELECT p.id FROM projects p WHERE p.inbox_owner_id = tasks.owner_id)"
        )
    )


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("project_ids", TEXT_LIST, nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("project_id", UUID, nullable=True))
        batch.add_column(sa.Column("parent_id", UUID, nullable=True))
        batch.add_column(sa.Column("assignee_id", UUID, nullable=True))
    _open_inboxes()
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("project_id", existing_type=UUID, nullable=False)
        for name, (column, referred, ondelete) in TASK_FOREIGN_KEYS.items():
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)
        for name in OWNER_SORT_INDEXES:
            batch.drop_index(name)
        for name, columns in TASK_INDEXES.items():
            batch.create_index(name, columns, unique=False)
    op.create_table(
        "comments",
        sa.Column("id", UUID, nullable=False),
        sa.Column("task_id", UUID, nullable=False),
        sa.Column("author_id", UUID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_comments_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_comments_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index(
        "ix_comments_task_id_created_at_id", "comments", ["task_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_comments_task_id_created_at_id", table_name="comments")
    op.drop_table("comments")
    with op.batch_alter_table("tasks") as batch:
        for name in TASK_INDEXES:
            batch.drop_index(name)
        for name, columns in OWNER_SORT_INDEXES.items():
            batch.create_index(name, columns, unique=False)
        for name in TASK_FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")
        batch.drop_column("assignee_id")
        batch.drop_column("parent_id")
        batch.drop_column("project_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("project_ids")
    op.drop_index(op.f("ix_project_members_user_id"), table_name="project_members")
    op.drop_table("project_members")
    op.drop_table("projects")
