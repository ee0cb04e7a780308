"""Webhook deliveries per second of one worker to a local receiver.

Seeds one user, one webhook pointing at a receiver on 127.0.0.1 (answering 204 at once) and
`--deliveries` pending deliveries, then runs the worker's delivery step (the real one, with the
httpx sender and its egress checks, private targets allowed) until nothing is due, and reports
deliveries per second and the SQL statements the steps sent per delivery (those SQLAlchemy hands
to the driver; BEGIN and COMMIT not counted). The database is `--database-url` (a migrated
PostgreSQL, say the bench's throwaway one), else a fresh SQLite file migrated here; `memory://`
measures the code alone.

Usage: python -m bench.webhooks [--deliveries 2000] [--concurrency 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from app.container import build_container, close_container
from app.settings import load_settings
from bench.receiver import local_receiver
from domain.auth import ALL_SCOPES, Principal, PrincipalKind
from domain.users import User
from domain.webhooks import WebhookDraft, new_delivery, payload


def settings_for(database_url: str, concurrency: int) -> Any:
    return load_settings(
        environ={
            "DATABASE_URL": database_url,
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_CONCURRENCY": str(concurrency),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        },
        dotenv_path=None,
    )


async def measure(deliveries: int, concurrency: int, database_url: str) -> dict[str, Any]:
    """Seed, drain with one worker's delivery step, and report the rate."""
    settings = settings_for(database_url, concurrency)
    container = build_container(settings)
    try:
        now = datetime.now(UTC)
        user = User(str(uuid.uuid4()), f"bench-{uuid.uuid4().hex[:8]}@example.com", None, "x", now)
        async with container.uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        caller = Principal(user.id, PrincipalKind.SESSION, ALL_SCOPES, "bench", "bench")
        async with local_receiver() as receiver:
            draft = WebhookDraft(url=receiver.url, events=["task.*"])
            hook = (await container.create_webhook().execute(caller, draft)).webhook
            ids = container.ids()
            body = payload("webhook.ping", now, {"webhook_id": hook.id})
            async with container.webhook_uow_factory()() as uow:
                for _ in range(deliveries):
                    await uow.deliveries.add(
                        new_delivery(
                            delivery_id=ids.new_id(),
                            webhook_id=hook.id,
                            event_id=ids.new_id(),
                            event_type="webhook.ping",
                            project_id=None,
                            body=body,
                            now=now,
                        )
                    )
                await uow.commit()
            deliver = container.deliver_webhooks()
            engine = container.engine()
            statements = [0]

            def count(*_args: Any) -> None:
                statements[0] += 1

            if engine is not None:
                event.listen(engine.sync_engine, "before_cursor_execute", count)
            started = time.perf_counter()
            done = 0
            while handled := await deliver.step():
                done += handled
            seconds = time.perf_counter() - started
            if engine is not None:
                event.remove(engine.sync_engine, "before_cursor_execute", count)
            received = receiver.count
            async with container.webhook_uow_factory()() as uow:
                backlog = await uow.deliveries.backlog()
    finally:
        await close_container(container)
    return {
        "deliveries": done,
        "received": received,
        "left_pending": backlog.pending,
        "concurrency": concurrency,
        "database": database_url.split(":", 1)[0],
        "seconds": round(seconds, 3),
        "per_second": round(done / seconds, 1) if seconds > 0 else None,
        "statements_per_delivery": (
            round(statements[0] / done, 2) if engine is not None and done else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url
        if url is None:
            from app.cli import migrate

            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            migrate(settings_for(url, args.concurrency))
        result = asyncio.run(measure(args.deliveries, args.concurrency, url))
    print(json.dumps(result))
    return 0 if result["left_pending"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
