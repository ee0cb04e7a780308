"""Webhook latency from a change's commit to its delivery, through a real Taskhub server.

Starts a throwaway PostgreSQL and Redis (unless BENCH_DATABASE_URL / BENCH_REDIS_URL are given),
migrates and creates a user and an API key through the `taskhub` CLI, serves Taskhub as
`bench.run` does (production settings, BENCH_WORKERS workers, each running the worker loop;
with `--worker separate` a `taskhub worker` process does the deliveries instead), with http and
private targets allowed, and subscribes one webhook (`task.*`) to a local receiver through the
API. One task created and delivered checks the path end to end; then tasks are created with
`POST /v1/tasks` at `--rate` per second for `--duration` seconds, open loop (each request leaves
at its scheduled time, answered or not), and the run waits up to `--drain` seconds for their
`task.created` deliveries.

Latency is measured from the event's `occurred_at` (the payload's `timestamp`, taken by the
server just before the statement that writes the task and its event commits: an upper bound of
commit-to-delivery) to the receiver having read the delivery in full; from the write's answer
arriving at the client (after the commit: a lower bound) as a second figure. Both clocks are
this host's wall clock. Every created task must be delivered (`missing`), each signature must
verify with the webhook's secret (`bad_signatures`, checked after the run) and every write must
answer 201 (`failed_writes`): any of them is an error (exit status 1; 2 when set-up fails).

Usage: python -m bench.webhook_latency [--rate 100] [--duration 20] [--drain 45]
       [--worker serve|separate] [--poll-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.receiver import Arrival, Receiver
from bench.run import POST_FIELDS, load_config, plain_dsn, say, taskhub_cli, taskhub_env
from bench.seed import delete_population
from bench.services import Server, ThrowawayPostgres, ThrowawayRedis, free_port, shielded

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# --- pure parts --------------------------------------------------------------------------------


def send_offsets(rate: float, duration: float) -> list[float]:
    """Seconds after the start at which each request of an open-loop run leaves: `rate` per
    second, evenly spaced, for `duration` seconds."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    return [n / rate for n in range(round(rate * duration))]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; None when empty."""
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Write:
    """One `POST /v1/tasks` of the run: its answer and when it came (wall clock), how late it
    left against its schedule, and how long it took."""

    status: int | None
    task_id: str | None
    answered_at: float
    late_s: float
    seconds: float


@dataclass(frozen=True, slots=True)
class Delivered:
    """One delivery the receiver read: the task it is about, its type, the event's time
    (`occurred_at`, Unix seconds), when it arrived, its `webhook-id`, whether its signature
    verified."""

    task_id: str | None
    event_type: str | None
    occurred_at: float | None
    arrived_at: float
    delivery_id: str
    signed: bool


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _ms(percentile(values, 50)),
        "p90_ms": _ms(percentile(values, 90)),
        "p99_ms": _ms(percentile(values, 99)),
        "max_ms": _ms(max(values, default=None)),
    }


def report(writes: Sequence[Write], delivered: Sequence[Delivered]) -> dict[str, Any]:
    """Latencies from each created task's event and answer to its first `task.created`
    delivery, and what went wrong: writes not answered 201, tasks never delivered, deliveries
    for tasks this run did not create, repeated `webhook-id`s, bad signatures."""
    created = {w.task_id: w for w in writes if w.status == 201 and w.task_id}
    first: dict[str, Delivered] = {}
    seen: set[str] = set()
    repeats = unexpected = 0
    for d in sorted(delivered, key=lambda d: d.arrived_at):
        if d.delivery_id in seen:
            repeats += 1
            continue
        seen.add(d.delivery_id)
        if d.event_type != "task.created" or d.task_id not in created:
            unexpected += 1
        elif d.task_id not in first:
            first[d.task_id] = d
    from_event = [d.arrived_at - d.occurred_at for d in first.values() if d.occurred_at]
    from_answer = [d.arrived_at - created[t].answered_at for t, d in first.items()]
    return {
        "changes": len(writes),
        "failed_writes": len(writes) - len(created),
        "delivered": len(first),
        "missing": len(created) - len(first),
        "unexpected": unexpected,
        "repeated": repeats,
        "bad_signatures": sum(1 for d in delivered if not d.signed),
        "from_occurred_at": _spread(from_event),
        "from_write_answer": _spread(from_answer),
        "write": _spread([w.seconds for w in writes]),
        "send_late_max_ms": _ms(max((w.late_s for w in writes), default=None)),
    }


def error_count(result: dict[str, Any]) -> int:
    keys = ("failed_writes", "missing", "unexpected", "bad_signatures")
    return sum(int(result[key]) for key in keys)


# --- the receiver's side ---------------------------------------------------------------------


def read_delivery(arrival: Arrival, secret: str) -> Delivered:
    """What one received request says, its signature checked with the official package."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(arrival.body, arrival.headers)
        signed = True
    except WebhookVerificationError:
        signed = False
    task_id = event_type = occurred = None
    try:
        body = json.loads(arrival.body)
        event_type = body["type"]
        occurred = datetime.fromisoformat(body["timestamp"]).timestamp()
        task_id = body["data"]["resource"]["id"]
    except (ValueError, KeyError, TypeError):
        pass
    return Delivered(
        task_id, event_type, occurred, arrival.at, arrival.headers.get("webhook-id", ""), signed
    )


# --- the run ---------------------------------------------------------------------------------


async def _write(client: httpx.AsyncClient, body: str, scheduled: float) -> Write:
    loop = asyncio.get_running_loop()
    started = loop.time()
    status: int | None = None
    task_id = None
    try:
        answer = await client.post(
            "/v1/tasks", content=body, headers={"content-type": "application/json"}
        )
        status = answer.status_code
        if status == 201:
            task_id = answer.json()["id"]
    except httpx.HTTPError:
        pass
    return Write(status, task_id, time.time(), started - scheduled, loop.time() - started)


async def drive(client: httpx.AsyncClient, body: str, rate: float, duration: float) -> list[Write]:
    """Writes paced open-loop: each leaves at its scheduled time whatever earlier ones do."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    pending = []
    for offset in send_offsets(rate, duration):
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(_write(client, body, start + offset)))
    return list(await asyncio.gather(*pending))


async def _until(receiver: Receiver, count: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while len(receiver.arrivals) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def measure(port: int, token: str, args: argparse.Namespace) -> dict[str, Any]:
    body = json.dumps(POST_FIELDS, separators=(",", ":"))
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"authorization": f"Bearer {token}"},
        limits=limits,
        timeout=30,
    ) as client:
        receiver = Receiver(keep=True)
        url = await receiver.start()
        try:
            answer = await client.post("/v1/webhooks", json={"url": url, "events": ["task.*"]})
            if answer.status_code != 201:
                status, text = answer.status_code, answer.text
                raise RuntimeError(f"POST /v1/webhooks answered {status}: {text}")
            secret = answer.json()["secret"]
            # One change delivered end to end before the run (the worker's first poll included).
            check = await _write(client, body, asyncio.get_running_loop().time())
            if check.status != 201 or not await _until(receiver, 1, 3 * args.poll_bound + 10):
                raise RuntimeError(f"the check write ({check.status}) was not delivered in time")
            receiver.arrivals.clear()
            say(f"delivered end to end; {args.rate:g} changes/s for {args.duration:g} s")
            started = time.monotonic()
            writes = await drive(client, body, args.rate, args.duration)
            created = sum(1 for w in writes if w.status == 201)
            driven = time.monotonic() - started
            say(f"{created} of {len(writes)} writes answered 201 in {driven:.1f} s; draining")
            drained = await _until(receiver, created, args.drain)
            await asyncio.sleep(0.5)  # a repeated delivery still on its way
        finally:
            await receiver.stop()
    result = report(writes, [read_delivery(a, secret) for a in receiver.arrivals])
    return {**result, "drained_in_time": drained, "drive_seconds": round(driven, 2)}


def main(argv: list[str] | None = None) -> int:
    description = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="bench.webhook_latency", description=description)
    parser.add_argument("--rate", type=float, default=100.0, help="changes per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of changes")
    parser.add_argument("--drain", type=float, default=45.0, help="seconds to wait after")
    parser.add_argument("--worker", choices=("serve", "separate"), default="serve")
    parser.add_argument("--poll-seconds", type=float, default=None, help="WORKER_POLL_SECONDS")
    args = parser.parse_args(argv)
    args.poll_bound = args.poll_seconds or 5.0
    cfg = load_config(quick=False)
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            home = Path(tempfile.mkdtemp(prefix="taskhub-whlat-"))
            stack.callback(shutil.rmtree, home, True)
            dsn, redis_url = _backends(stack)
            port = free_port()
            env = taskhub_env(cfg, home, dsn, redis_url, port)
            env |= {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
            if args.poll_seconds is not None:
                env["WORKER_POLL_SECONDS"] = str(args.poll_seconds)
            taskhub_cli(env, home, "migrate")
            email = f"whlat-{uuid.uuid4().hex[:12]}@example.com"
            password = secrets.token_urlsafe(18) + "\n"
            user = taskhub_cli(env, home, "create-user", email, "--password-stdin", stdin=password)
            if os.environ.get("BENCH_DATABASE_URL"):  # the user, its inbox, tasks and webhook
                stack.callback(lambda: asyncio.run(delete_population(dsn, [user])))
            token = taskhub_cli(
                env, home, "create-api-key", email, "--name", "whlat", "--scope", "tasks:read",
                "--scope", "tasks:write", "--scope", "webhooks:manage",
            )  # fmt: skip
            argv_serve = [str(Path(sys.executable).parent / "taskhub"), "serve"]
            if args.worker == "separate":
                env["SERVE_WORKER"] = "false"
                worker_env = {**env, "WORKER_PORT": "0"}
                worker_env["PROMETHEUS_MULTIPROC_DIR"] = str(home / "worker-metrics")
                argv_worker = [argv_serve[0], "worker"]
                log = RESULTS / "webhook-latency-worker.log"
                worker = Server("worker", argv_worker, worker_env, home, log)
                stack.callback(shielded(worker.stop))
            server = Server("taskhub", argv_serve, env, home, RESULTS / "webhook-latency.log")
            stack.callback(shielded(server.stop))
            say(f"taskhub healthy after {server.wait_healthy(port):.2f} s on port {port}")
            result = asyncio.run(measure(port, token, args))
    except (RuntimeError, OSError) as exc:
        say(f"FAILED: {exc}")
        return 2
    result = {
        "rate": args.rate,
        "duration_s": args.duration,
        "worker": args.worker,
        "workers": cfg.workers,
        "poll_seconds": args.poll_bound,
        **result,
    }
    print(json.dumps(result))
    errors = error_count(result)
    if errors:
        say(f"{errors} errors (see failed_writes, missing, unexpected, bad_signatures)")
    return 1 if errors else 0


def _backends(stack: ExitStack) -> tuple[str, str]:
    """A plain PostgreSQL DSN and a Redis URL: the given ones, or throwaway ones."""
    given_db = os.environ.get("BENCH_DATABASE_URL")
    if given_db:
        dsn = plain_dsn(given_db)
    else:
        pg = ThrowawayPostgres()
        stack.callback(shielded(pg.stop))
        pg.start()
        dsn = pg.dsn
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        redis = ThrowawayRedis()
        stack.callback(shielded(redis.stop))
        redis.start()
        redis_url = redis.url
    return dsn, redis_url


if __name__ == "__main__":
    raise SystemExit(main())
