"""Webhook deliveries per second of one worker to a local receiver.

Seeds one user, one webhook pointing at a receiver on 127.0.0.1 (answering 204 at once) and
`--deliveries` pending deliveries, then runs the worker's delivery step (the real one, with the
httpx sender and its egress checks, private targets allowed) until nothing is due, and reports
deliveries per second. The database is `--database-url` (a migrated PostgreSQL, say the bench's
throwaway one), else a fresh SQLite file migrated here; `memory://` measures the code alone.

Usage: python -m bench.webhooks [--deliveries 2000] [--concurrency 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.container import build_container, close_container
from app.settings import load_settings
from domain.auth import ALL_SCOPES, Principal, PrincipalKind
from domain.users import User
from domain.webhooks import WebhookDraft, new_delivery, payload


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive HTTP/1.1 endpoint that reads each request and answers 204."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def local_receiver() -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()


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
        async with local_receiver() as url:
            draft = WebhookDraft(url=url, events=["task.*"])
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
            started = time.perf_counter()
            done = 0
            while handled := await deliver.step():
                done += handled
            seconds = time.perf_counter() - started
            async with container.webhook_uow_factory()() as uow:
                backlog = await uow.deliveries.backlog()
    finally:
        await close_container(container)
    return {
        "deliveries": done,
        "left_pending": backlog.pending,
        "concurrency": concurrency,
        "database": database_url.split(":", 1)[0],
        "seconds": round(seconds, 3),
        "per_second": round(done / seconds, 1) if seconds > 0 else None,
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
