"""Real `taskhub worker` processes on one PostgreSQL purge a trash of 10,000 expired tasks (trees
and single tasks) exactly once, with exact per-creator counts, while the worker doing the work is
killed with SIGKILL and the others finish."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

from tests.integration.scale.processes import clean_env, fresh_database, run_all
from tests.integration.scale.test_worker import (
    WorkerProcess,
    _execute,
    query,
    scalar,
    start_worker,
    wait_for,
    wait_live,
    workers,
)

__all__ = ["workers"]  # the fixture, used by name

JOB = "purge_trash"
ROOTS = 2_500  # each with three subtasks: 10,000 expired trashed tasks
EXPIRED = ROOTS * 4
KEPT = 100  # live tasks, and as many trashed too recently to purge
OWNERS = (str(uuid.UUID(int=1)), str(uuid.UUID(int=2)))
PROJECT = str(uuid.UUID(int=100))

_COLUMNS = (
    "id, owner_id, project_id, parent_id, assignee_id, title, description, status, priority, "
    "labels, due_at, completed_at, created_at, updated_at, version, title_folded, "
    "description_folded, deleted_at, trashed_with"
)


def _tasks(select_id: str, parent: str, owner: str, deleted_at: str, trashed_with: str) -> str:
    return (
        f"SELECT {select_id}, {owner}, '{PROJECT}'::uuid, {parent}, NULL, 't', NULL, 'todo', 1, "
        f"'{{}}', NULL, NULL, now() - interval '60 days', now(), 2, 't', NULL, {deleted_at}, "
        f"{trashed_with}"
    )


# Ids from md5 so that a subtask names its root; creators alternate, so both counts move.
_ROOT = "md5('root-' || n)::uuid"
_OWNER_OF_ROOT = f"(ARRAY['{OWNERS[0]}', '{OWNERS[1]}']::uuid[])[1 + n % 2]"
_OWNER_OF_CHILD = f"(ARRAY['{OWNERS[0]}', '{OWNERS[1]}']::uuid[])[1 + (n + k) % 2]"
SEED = f"""
CREATE TABLE purge_audit (task_id uuid NOT NULL);
CREATE FUNCTION audit_task_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO purge_audit VALUES (OLD.id);
    RETURN OLD;
END $$;
CREATE TRIGGER tasks_audit AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION audit_task_delete();
INSERT INTO users (id, email, email_key, name, password_hash, created_at) VALUES
    ('{OWNERS[0]}', 'a@example.com', 'a@example.com', NULL, 'x', now()),
    ('{OWNERS[1]}', 'b@example.com', 'b@example.com', NULL, 'x', now());
INSERT INTO projects (id, name, description, inbox, inbox_owner_id, created_at, updated_at,
                      version)
    VALUES ('{PROJECT}', 'p', NULL, false, NULL, now(), now(), 1);
INSERT INTO tasks ({_COLUMNS})
    {
    _tasks(_ROOT, "NULL", _OWNER_OF_ROOT, "now() - interval '40 days'", _ROOT)
} FROM generate_series(1, {ROOTS}) AS n;
INSERT INTO tasks ({_COLUMNS})
    {
    _tasks(
        "md5('child-' || n || '-' || k)::uuid",
        _ROOT,
        _OWNER_OF_CHILD,
        "now() - interval '40 days'",
        _ROOT,
    )
} FROM generate_series(1, {ROOTS}) AS n, generate_series(1, 3) AS k;
INSERT INTO tasks ({_COLUMNS})
    {_tasks("gen_random_uuid()", "NULL", f"'{OWNERS[0]}'", "NULL", "NULL")}
    FROM generate_series(1, {KEPT}) AS n;
INSERT INTO tasks ({_COLUMNS})
    {
    _tasks(
        "md5('recent-' || n)::uuid",
        "NULL",
        f"'{OWNERS[1]}'",
        "now() - interval '1 day'",
        "md5('recent-' || n)::uuid",
    )
} FROM generate_series(1, {KEPT}) AS n;
INSERT INTO task_counts (owner_id, n)
    SELECT owner_id, count(*) FROM tasks GROUP BY owner_id;
"""


def test_three_workers_purge_the_trash_once_though_one_is_killed_midway(
    postgres_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    with fresh_database(postgres_url) as url:
        env = clean_env(
            tmp_path,
            DATABASE_URL=url,
            LOG_LEVEL="INFO",
            WORKER_POLL_SECONDS="0.2",
            WORKER_LEASE_SECONDS="2",
            DATABASE_STATEMENT_TIMEOUT_MS="1000",
            WORKER_BATCH_SIZE="10",
            TRASH_RETENTION_DAYS="30",
            TRASH_PURGE_INTERVAL_SECONDS="1",
        )
        run_all(env, [(["migrate"], None)])
        asyncio.run(_execute(url, SEED))
        expired = "deleted_at < now() - interval '30 days'"
        seeded = {row[0] for row in query(url, f"SELECT id FROM tasks WHERE {expired}")}
        assert len(seeded) == EXPIRED

        workers.extend(start_worker(env, str(n)) for n in range(3))
        for worker in workers:
            wait_live(worker)
        by_pid = {worker.proc.pid: worker for worker in workers}

        def holder_midway() -> bool:
            done = int(str(scalar(url, "SELECT count(*) FROM purge_audit")))
            return 500 <= done < EXPIRED - 1000

        wait_for(holder_midway, 120, "the purge to get going")
        leased_by = str(scalar(url, f"SELECT leased_by FROM worker_jobs WHERE name = '{JOB}'"))
        victim = by_pid[int(leased_by.split(":")[1])]
        victim.signal(signal.SIGKILL)
        victim.proc.wait()
        time.sleep(0.5)  # its connection is gone and its open transaction rolled back
        by_victim = int(str(scalar(url, "SELECT count(*) FROM purge_audit")))
        assert 0 < by_victim < EXPIRED

        wait_for(
            lambda: scalar(url, f"SELECT count(*) FROM tasks WHERE {expired}") == 0,
            180,
            "the survivors to purge the rest",
        )
        survivors = [worker for worker in workers if worker is not victim]
        wait_for(
            lambda: (
                scalar(url, f"SELECT leased_by IS NULL FROM worker_jobs WHERE name = '{JOB}'")
                is True
            ),
            30,
            "the lease to be given back",
        )
        purged = query(url, "SELECT task_id, count(*) FROM purge_audit GROUP BY task_id")
        assert {row[0] for row in purged} == seeded  # every expired task went ...
        assert all(row[1] == 1 for row in purged)  # ... once
        assert scalar(url, "SELECT count(*) FROM tasks") == 2 * KEPT  # the others stay
        counts = {str(row[0]): row[1] for row in query(url, "SELECT owner_id, n FROM task_counts")}
        held = {
            str(row[0]): row[1]
            for row in query(url, "SELECT owner_id, count(*) FROM tasks GROUP BY owner_id")
        }
        assert counts == held == {OWNERS[0]: KEPT, OWNERS[1]: KEPT}  # exact per creator

        by_survivors = sum(
            w.sample("taskhub_worker_job_items_total", worker_job=JOB) for w in survivors
        )
        assert by_survivors == EXPIRED - by_victim  # the survivors finished the victim's share
        for worker in survivors:
            assert (
                worker.sample("taskhub_worker_job_runs_total", worker_job=JOB, outcome="failed")
                == 0
            )
            assert worker.stop() == 0, worker.log_tail()
            assert '"level": "error"' not in worker.log.read_text(), worker.log_tail()
