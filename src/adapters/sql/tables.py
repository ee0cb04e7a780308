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
    text,
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

LIVE = text("deleted_at IS NULL")
TRASHED = text("deleted_at IS NOT NULL")

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
    # Set while the task is in the trash (domain.trash): when it went there, and the id of the
    # task the user deleted with it (restoring that one brings back the tasks that name it).
    Column("deleted_at", UTC_DATETIME, nullable=True),
    Column("trashed_with", UUID_TEXT, nullable=True),
    CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="status"),
    CheckConstraint("priority BETWEEN 1 AND 4", name="priority"),
    CheckConstraint("version >= 1", name="version"),
    # One btree per sort key within a project, over live tasks only (lists never show the
    # trash); a backward scan serves the descending variant (the default list, -created_at,
    # walks the first one backwards). A list reads each readable project's slice of one of them.
    *(
        Index(
            f"ix_tasks_project_id_{key}_id",
            "project_id",
            key,
            "id",
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
        for key in ("created_at", "updated_at", "due_at", "priority")
    ),
    # The trash: its list (per project, newest first), the purge (oldest first) and a restore
    # (the tasks trashed with one).
    Index(
        "ix_tasks_project_id_deleted_at_id",
        "project_id",
        "deleted_at",
        "id",
        postgresql_where=TRASHED,
        sqlite_where=TRASHED,
    ),
    Index("ix_tasks_deleted_at", "deleted_at", postgresql_where=TRASHED, sqlite_where=TRASHED),
    Index("ix_tasks_trashed_with", "trashed_with", postgresql_where=TRASHED, sqlite_where=TRASHED),
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

# --- webhooks ------------------------------------------------------------------------------------

# A user's subscriptions. Secrets are Fernet ciphertext (ENCRYPTION_KEY). `project_id` has no
# foreign key: a deleted project leaves its webhooks in place, receiving nothing.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column(
        "owner_id",
        UUID_TEXT,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("url", String(2000), nullable=False),
    Column("events", TEXT_LIST, nullable=False),
    Column("project_id", UUID_TEXT, nullable=True),
    Column("description", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UTC_DATETIME, nullable=True),
    Column("failing_since", UTC_DATETIME, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("version >= 1", name="version"),
)

# One event for one webhook; its id is the `webhook-id` of every attempt. A claim leases it
# (`leased_by` until `leased_until`) for the length of one attempt. `payload` is NULL while the
# event's row in `events` holds the body (adapters.sql.webhooks builds the payload from it); it
# is copied in when the event is purged first, and always for a delivery with no event (a ping).
DELIVERY_PENDING = text("status = 'pending'")
DELIVERY_FINISHED = text("status <> 'pending'")
DELIVERY_BY_REFERENCE = text("payload IS NULL")
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column("webhook_id", UUID_TEXT, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", UUID_TEXT, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("project_id", UUID_TEXT, nullable=True),
    Column("payload", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTC_DATETIME, nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("leased_by", String(200), nullable=True),
    Column("leased_until", UTC_DATETIME, nullable=True),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    # A webhook's deliveries, newest first, with a keyset before (created_at, id).
    Index("ix_webhook_deliveries_webhook_id_created_at_id", "webhook_id", "created_at", "id"),
    # What the delivery job claims: the pending ones by due time (a finished delivery leaves
    # this index, so claims and the backlog count never walk the delivery log).
    Index(
        "ix_webhook_deliveries_pending_next_attempt_at_id",
        "next_attempt_at",
        "id",
        postgresql_where=DELIVERY_PENDING,
        sqlite_where=DELIVERY_PENDING,
    ),
    # What the retention purge deletes: finished ones by their last change.
    Index(
        "ix_webhook_deliveries_finished_updated_at",
        "updated_at",
        postgresql_where=DELIVERY_FINISHED,
        sqlite_where=DELIVERY_FINISHED,
    ),
    # The deliveries an events purge must give their payload to before their event goes.
    Index(
        "ix_webhook_deliveries_by_reference_event_id",
        "event_id",
        postgresql_where=DELIVERY_BY_REFERENCE,
        sqlite_where=DELIVERY_BY_REFERENCE,
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", UUID_TEXT, primary_key=True),
    Column(
        "delivery_id",
        UUID_TEXT,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempted_at", UTC_DATETIME, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("response_status", SmallInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("response_body", Text, nullable=True),
)

# The fan-out's place in the change feed: one row, moved in the same transaction as the
# deliveries it created.
webhook_fan_out = Table(
    "webhook_fan_out",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("position", Text, nullable=True),
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
