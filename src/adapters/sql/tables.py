"""SQLAlchemy Core tables (the schema Alembic migrates), with a constraint naming convention."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

from adapters.sql.types import TEXT_LIST, UTC_DATETIME, UUID_TEXT

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# --- identity ------------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column("email", String(254), nullable=False),
    # domain.users.email_key(email): case-folded NFC, what uniqueness is enforced on.
    Column("email_key", Text, nullable=False, index=True, unique=True),
    Column("name", String(200), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column(
        "user_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("token_hash", String(128), nullable=False, index=True, unique=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    # Indexed for the purge of sessions past use (expired or revoked long enough ago).
    Column("expires_at", UTC_DATETIME, nullable=False, index=True),
    Column("revoked_at", UTC_DATETIME, nullable=True, index=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column("user_id", UUID_TEXT, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(128), nullable=False, index=True, unique=True),
    # Scope names, sorted and separated by single spaces ("keys:manage tasks:read").
    Column("scopes", Text, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=True),
    Column("revoked_at", UTC_DATETIME, nullable=True),
    Column("last_used_at", UTC_DATETIME, nullable=True),
    # The key that issued this one (null: a session, the service or the CLI issued it).
    Column(
        "created_by_key_id",
        UUID_TEXT,
        ForeignKey("api_keys.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    # The projects a restricted key may reach (null: unrestricted); read with the key's row.
    Column("project_ids", TEXT_LIST, nullable=True),
    # Serves the key list: WHERE user_id ORDER BY created_at, id (backwards: newest first).
    Index("ix_api_keys_user_id_created_at_id", "user_id", "created_at", "id"),
)

# --- projects ------------------------------------------------------------------------------------

projects = Table(
    "projects",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("inbox", Boolean, nullable=False),
    # The user whose inbox this is (null for every other project): unique, so a user has at
    # most one inbox.
    Column(
        "inbox_owner_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("inbox = (inbox_owner_id IS NOT NULL)", name="inbox_owner"),
    CheckConstraint("version >= 1", name="version"),
)

project_members = Table(
    "project_members",
    metadata,
    Column("project_id", UUID_TEXT, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "user_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(16), nullable=False),
    Column("added_at", UTC_DATETIME, nullable=False),
    PrimaryKeyConstraint("project_id", "user_id"),
    CheckConstraint("role IN ('owner', 'editor', 'viewer')", name="role"),
)

# --- tasks ---------------------------------------------------------------------------------------

tasks = Table(
    "tasks",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    # Who created the task (rights come from the project's membership, not from this).
    Column(
        "owner_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("project_id", UUID_TEXT, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # Deleting a task deletes its subtasks with it.
    Column(
        "parent_id",
        UUID_TEXT,
        ForeignKey("tasks.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    Column(
        "assignee_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("labels", TEXT_LIST, nullable=False),
    Column("due_at", UTC_DATETIME, nullable=True),
    Column("completed_at", UTC_DATETIME, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("version", Integer, nullable=False),
    # domain.tasks.fold_for_search of title / description, what `q` is matched against.
    Column("title_folded", Text, nullable=False),
    Column("description_folded", Text, nullable=True),
    CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="status"),
    CheckConstraint("priority BETWEEN 1 AND 4", name="priority"),
    CheckConstraint("version >= 1", name="version"),
    # One btree per sort key within a project; a backward scan serves the descending variant
    # (the default list, -created_at, walks the first one backwards). A list reads each
    # readable project's slice of one of them.
    Index("ix_tasks_project_id_created_at_id", "project_id", "created_at", "id"),
    Index("ix_tasks_project_id_updated_at_id", "project_id", "updated_at", "id"),
    Index("ix_tasks_project_id_due_at_id", "project_id", "due_at", "id"),
    Index("ix_tasks_project_id_priority_id", "project_id", "priority", "id"),
    # "Has all these labels" (`labels @> ARRAY[...]`); SQLite scans json_each instead.
    Index("ix_tasks_labels", "labels", postgresql_using="gin").ddl_if(dialect="postgresql"),
    # `q` (an unanchored LIKE on the folded texts) through pg_trgm; SQLite scans instead.
    *(
        Index(
            f"ix_tasks_{column}_trgm",
            column,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql")
        for column in ("title_folded", "description_folded")
    ),
)


comments = Table(
    "comments",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column("task_id", UUID_TEXT, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", UUID_TEXT, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    # Serves a task's comments, oldest first, with a keyset after (created_at, id).
    Index("ix_comments_task_id_created_at_id", "task_id", "created_at", "id"),
)

# How many tasks each owner holds, kept exact by the statements that insert and delete a task
# (adapters.sql.tasks), so the per-owner cap is checked without counting the tasks.
task_counts = Table(
    "task_counts",
    metadata,
    Column("owner_id", UUID_TEXT, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("n", Integer, nullable=False),
    CheckConstraint("n >= 0", name="n"),
)

# --- worker --------------------------------------------------------------------------------------

# One row per periodic job: when it is next due, which worker holds its lease until when.
worker_jobs = Table(
    "worker_jobs",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("next_run_at", UTC_DATETIME, nullable=False),
    Column("leased_by", String(200), nullable=True),
    Column("leased_until", UTC_DATETIME, nullable=True),
    Column("last_success_at", UTC_DATETIME, nullable=True),
)

# --- events --------------------------------------------------------------------------------------

# Every change's event, written in the transaction of the change (adapters.sql.events). `seq`
# numbers rows in insert order; `txid` is the writing transaction's id on PostgreSQL (0 on SQLite,
# whose single writer commits in `seq` order): the feed walks (txid, seq) and, on PostgreSQL,
# shows a transaction's events only once every older transaction has finished.
events = Table(
    "events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("txid", BigInteger, nullable=False),
    Column("id", UUID_TEXT, nullable=False, unique=True),
    Column("type", String(40), nullable=False),
    Column("occurred_at", UTC_DATETIME, nullable=False, index=True),
    # No foreign key: a deleted project's events outlive it (its project.deleted event).
    Column("project_id", UUID_TEXT, nullable=True),
    Column("resource_type", String(20), nullable=False),
    Column("resource_id", UUID_TEXT, nullable=False),
    # Users who see the event in their feed without reading its project now (space-separated).
    Column("audience", Text, nullable=True),
    # The event as the API shows it (JSON text).
    Column("body", Text, nullable=False),
    Index("ix_events_txid_seq", "txid", "seq"),
    Index("ix_events_project_id_seq", "project_id", "seq"),
    Index("ix_events_resource_id_seq", "resource_id", "seq"),
    # Never reuse a number, even once the newest events are purged.
    sqlite_autoincrement=True,
)

# The newest feed position (txid, seq) the retention job has deleted: a cursor before it has
# missed an event for good (410).
event_horizon = Table(
    "event_horizon",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("txid", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
)
