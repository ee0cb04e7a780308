"""The change-stream row: how long a committed event takes to reach open streams on two replicas
while a paced writer commits a steady rate of task writes.

Starts `--replicas` `taskhub serve` processes (production settings, `--workers` uvicorn workers
each) on one PostgreSQL and one Redis, opens `--streams-per-replica` `GET /v1/changes/stream`
streams on each (in a reader process of their own, so the writer's work does not delay the
receive times), then sends `--rate` writes a second for `--warmup` + `--duration` seconds: an
open loop (each write starts on its schedule whatever the earlier ones are doing), creates and
title updates of tasks alternating over the replicas. Every write's title carries its number, so
each event on each stream is matched to its write.

Latency, per event and stream: receive time minus the event's `occurred_at`. `occurred_at` is the
server's clock read when the use case starts, before its transaction opens, so it comes before
the commit: the figure is an upper bound of commit-to-receive (it also holds the write's own
statements and commit). The writer's time of the write's answer comes after the commit, so
receive time minus that is a lower bound (it may be negative); both are reported. All clocks are
the one host's wall clock.

  .venv/bin/python -m bench.stream                     # 2 replicas x 2 workers, 200 writes/s
  .venv/bin/python -m bench.stream --duration 10       # shorter
  .venv/bin/python -m bench.stream --throwaway-cluster # own PostgreSQL, durability off

Exit status: 0 measured, 1 a write failed or an event did not reach a stream (the figures are
void), 2 set-up failed, 3 with --strict when the goal is missed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import msgspec
from redis import Redis

from bench.run import RESULTS, Config, git_state, say, taskhub_cli, taskhub_env
from bench.services import (
    PG_SETTINGS,
    Server,
    ThrowawayPostgres,
    ThrowawayRedis,
    background_cpu_busy,
    cpu_seconds_between,
    cpu_ticks,
    free_port,
    shielded,
)

GOAL_P99_MS = 250.0
TARGET_SECONDS = 10
IDLE_REUSE_SECONDS = 2.0  # below Taskhub's default HTTP keep-alive timeout
STREAM_PATH = "/v1/changes/stream?after=now"
SCOPES = ("tasks:read", "tasks:write", "projects:read")
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


# --- pure helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    id: str
    type: str
    data: str


class SseParser:
    """Server-sent events from a byte stream cut anywhere: `feed` returns the events that the
    bytes so far complete (a blank line ends one; comments and unknown fields are skipped)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._id = ""
        self._type = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        found: list[SseEvent] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return found
            line = self._buffer[:end].rstrip(b"\r").decode()
            self._buffer = self._buffer[end + 1 :]
            if not line:
                if self._data:
                    found.append(SseEvent(self._id, self._type or "message", "\n".join(self._data)))
                self._type, self._data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._type = value
            elif name == "id":
                self._id = value


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`th percentile (0 < q <= 100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def due_offset(index: int, rate: float) -> float:
    """Seconds after the start at which write `index` (from 0) is due at `rate` writes/s."""
    return index / rate


def is_update(index: int, update_share: float) -> bool:
    """Whether write `index` is an update: spread evenly, `update_share` of any run of writes."""
    return math.floor((index + 1) * update_share) > math.floor(index * update_share)


def marker_of(title: str, tag: str) -> int | None:
    """The write number a title written by this run carries (`<tag> <n>`), else None."""
    head, _, number = title.partition(" ")
    if head != tag or not number.isdigit():
        return None
    return int(number)


def wall_time(rfc3339: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as the API writes it."""
    return datetime.fromisoformat(rfc3339).timestamp()


# --- records ------------------------------------------------------------------------------------


@dataclass
class Write:
    index: int
    kind: str  # create | update
    replica: int
    due: float  # wall clock
    sent: float
    answered: float
    status: int  # 0: no answer
    error: str = ""


@dataclass
class Received:
    marker: int
    type: str
    occurred_at: float
    received: float


@dataclass
class StreamLog:
    index: int
    replica: int
    status: int = 0
    error: str = ""
    events: list[Received] = field(default_factory=list)


# --- the reader process -------------------------------------------------------------------------


async def _read_stream(
    client: httpx.AsyncClient,
    log: StreamLog,
    raw: list[tuple[float, str]],
    url: str,
    token: str,
    tag: bytes,
    ready: asyncio.Event,
) -> None:
    """Hold one stream; keep (receive time, data) of this run's events, decoded later."""
    parser = SseParser()
    try:
        async with client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
            log.status = r.status_code
            if r.status_code != 200:
                log.error = (await r.aread()).decode(errors="replace")[:200]
                return
            async for chunk in r.aiter_raw():
                now = time.time()
                ready.set()  # the first bytes (a comment) come after the stream's first read
                for event in parser.feed(chunk):
                    if tag in event.data.encode():
                        raw.append((now, event.data))
    except httpx.HTTPError as exc:
        log.error = f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()


def _decode(raw: list[tuple[float, str]], tag: str) -> list[Received]:
    found: list[Received] = []
    for received, data in raw:
        event = msgspec.json.decode(data)
        title = (event.get("data") or {}).get("title", "")
        marker = marker_of(title, tag)
        if marker is not None:
            found.append(Received(marker, event["type"], wall_time(event["occurred_at"]), received))
    return found


async def _reader(conn: Connection, urls: list[tuple[int, str]], token: str, tag: str) -> None:
    logs = [StreamLog(n, replica) for n, (replica, _) in enumerate(urls)]
    raws: list[list[tuple[float, str]]] = [[] for _ in urls]
    readies = [asyncio.Event() for _ in urls]
    timeout = httpx.Timeout(10.0, read=None)
    limits = httpx.Limits(max_connections=len(urls) + 1)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        tasks = [
            asyncio.create_task(_read_stream(client, log, raw, url, token, tag.encode(), ready))
            for log, raw, (_, url), ready in zip(logs, raws, urls, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        conn.send(("ready", [(log.status, log.error) for log in logs]))
        expected, deadline = await loop.run_in_executor(None, conn.recv)
        # Until every stream has as many of this run's events as writes succeeded, or the grace
        # period ends (a missing event is then counted as missing).
        for _ in range(max(0, math.ceil((deadline - time.time()) / 0.05))):
            if all(len(raw) >= expected for raw in raws):
                break
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for log, raw in zip(logs, raws, strict=True):
        log.events = _decode(raw, tag)
    conn.send(("done", [asdict(log) for log in logs]))


def reader_main(conn: Connection, urls: list[tuple[int, str]], token: str, tag: str) -> None:
    """Entry point of the reader process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    try:
        asyncio.run(_reader(conn, urls, token, tag))
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))


# --- the writer ---------------------------------------------------------------------------------


def response_head(head: bytes) -> tuple[int, int | None, bool]:
    """(status, Content-Length or None when the body is chunked, keep-alive) of an HTTP/1.1
    response head (through its blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length: int | None = None
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            length = None
        elif name == "connection" and value == "close":
            keep_alive = False
    return status, length, keep_alive


class Connections:
    """Keep-alive HTTP/1.1 connections to one server: a free one is reused, else one is opened.
    Far less work per request than a general client, so the writer keeps its schedule and the
    time to an answer is the server's, not the client's."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._address = (host, port)
        self._headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        self._free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A free connection the server cannot have closed meanwhile (closed ones and ones idle
        near the server's keep-alive timeout are dropped), else a new one."""
        while self._free:
            reader, writer, since = self._free.pop()
            if not reader.at_eof() and time.monotonic() - since < IDLE_REUSE_SECONDS:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(*self._address)

    async def request(self, method: str, path: str, body: bytes) -> int:
        """The answer's status; raises OSError / asyncio.IncompleteReadError on a broken one."""
        reader, writer = await self._connection()
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\n{self._headers}Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, length, keep_alive = response_head(await reader.readuntil(b"\r\n\r\n"))
            if length is None:
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            else:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if keep_alive:
            self._free.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer, _ in self._free:
            writer.close()
        self._free.clear()


async def _one_write(pool: Connections, write: Write, title: str, target: str | None) -> None:
    body = msgspec.json.encode({"title": title})
    write.sent = time.time()
    try:
        if target is None:
            call = pool.request("POST", "/v1/tasks", body)
        else:
            call = pool.request("PATCH", f"/v1/tasks/{target}", body)
        write.status = await asyncio.wait_for(call, 15)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        write.status, write.error = 0, type(exc).__name__
    write.answered = time.time()


async def write_load(
    bases: Sequence[str],
    token: str,
    tag: str,
    targets: Sequence[str],
    rate: float,
    seconds: float,
    update_share: float,
) -> list[Write]:
    """Open loop: write n starts at start + n / rate, on replica n mod len(bases)."""
    pools = [Connections("127.0.0.1", int(b.rpartition(":")[2]), token) for b in bases]
    writes: list[Write] = []
    running: list[asyncio.Task[None]] = []
    cycle = itertools.cycle(targets)
    try:
        total = int(rate * seconds)
        start = time.time() + 0.1
        for index in range(total):
            due = start + due_offset(index, rate)
            pause = due - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
            update = is_update(index, update_share)
            replica = index % len(bases)
            write = Write(index, "update" if update else "create", replica, due, 0.0, 0.0, 0)
            writes.append(write)
            target = next(cycle) if update else None
            running.append(
                asyncio.create_task(_one_write(pools[replica], write, f"{tag} {index}", target))
            )
        await asyncio.gather(*running)
    finally:
        for pool in pools:
            pool.close()
    return writes


async def create_targets(base: str, token: str, count: int) -> list[str]:
    """Tasks for the updates to change, made in batches of 100 before the streams open (their
    events are not counted)."""
    headers = {"Authorization": f"Bearer {token}"}
    made: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        for first in range(0, count, 100):
            creates = [
                {"op": "create", "data": {"title": f"target {n}"}}
                for n in range(first, min(count, first + 100))
            ]
            response = await client.post(
                "/v1/tasks/batch", json={"operations": creates}, headers=headers
            )
            if response.status_code != 200:
                raise RuntimeError(f"a batch of creates answered {response.status_code}")
            made += [result["task"]["id"] for result in response.json()["results"]]
    return made


# --- the summary --------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


def summarise(
    writes: Sequence[Write], streams: Sequence[StreamLog], warmup_writes: int
) -> dict[str, Any]:
    """Per stream and over all streams: received vs written, missing, duplicates, and the
    latency bounds of the events of measured (post warm-up) writes."""
    done = {w.index: w for w in writes if 200 <= w.status < 300}
    rows: list[dict[str, Any]] = []
    upper_all: list[float] = []
    lower_all: list[float] = []
    by_side: dict[str, list[float]] = {"same": [], "other": []}
    for stream in streams:
        seen: set[int] = set()
        duplicates = 0
        upper: list[float] = []
        lower: list[float] = []
        for event in stream.events:
            write = done.get(event.marker)
            if write is None:
                continue
            if event.marker in seen:
                duplicates += 1
                continue
            seen.add(event.marker)
            if event.marker < warmup_writes:
                continue
            upper.append(event.received - event.occurred_at)
            lower.append(event.received - write.answered)
            by_side["same" if write.replica == stream.replica else "other"].append(upper[-1])
        upper_all += upper
        lower_all += lower
        rows.append(
            {
                "stream": stream.index,
                "replica": stream.replica,
                "status": stream.status,
                "error": stream.error,
                "written": len(done),
                "received": len(seen),
                "missing": len(done) - len(seen),
                "duplicates": duplicates,
                **_ms(upper),
                "lower_bound": _ms(lower),
            }
        )
    p99 = _ms(upper_all)["p99_ms"]
    answers = [w.answered - w.sent for w in writes if w.status]
    lateness = [w.sent - w.due for w in writes]
    return {
        "streams": rows,
        "all": {
            "events": len(upper_all),
            "missing": sum(r["missing"] for r in rows),
            "duplicates": sum(r["duplicates"] for r in rows),
            **_ms(upper_all),
            "lower_bound": _ms(lower_all),
        },
        "same_replica": _ms(by_side["same"]),
        "other_replica": _ms(by_side["other"]),
        "writes": {
            "sent": len(writes),
            "ok": len(done),
            "failed": len(writes) - len(done),
            "statuses": _statuses(writes),
            "answer": _ms(answers),
            "start_lateness": _ms(lateness),
        },
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": p99 is not None and p99 <= GOAL_P99_MS,
    }


def _statuses(writes: Sequence[Write]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for write in writes:
        key = f"{write.status} {write.error}" if write.error else str(write.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def render(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    a = summary["all"]
    lines = [
        f"Change stream: {cfg['replicas']} replicas x {cfg['workers']} workers, "
        f"{cfg['streams_per_replica']} stream(s) per replica, {cfg['rate']:g} writes/s open loop "
        f"({cfg['update_share']:.0%} title updates, the rest creates; alternating replicas) "
        f"for {cfg['duration']:g} s after a {cfg['warmup']:g} s warm-up",
        "",
        "| stream | replica | received / written | missing | duplicates "
        "| p50 ms | p99 ms | max ms | lower bound p50 / p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in summary["streams"]:
        low = row["lower_bound"]
        lines.append(
            f"| {row['stream']} | {row['replica']} | {row['received']} / {row['written']} "
            f"| {row['missing']} | {row['duplicates']} | {_f(row['p50_ms'])} "
            f"| {_f(row['p99_ms'])} | {_f(row['max_ms'])} "
            f"| {_f(low['p50_ms'])} / {_f(low['p99_ms'])} |"
        )
    low = a["lower_bound"]
    lines.append(
        f"| **all** | | {a['events']} measured events | {a['missing']} | {a['duplicates']} "
        f"| **{_f(a['p50_ms'])}** | **{_f(a['p99_ms'])}** | {_f(a['max_ms'])} "
        f"| {_f(low['p50_ms'])} / {_f(low['p99_ms'])} |"
    )
    same, other = summary["same_replica"], summary["other_replica"]
    w = summary["writes"]
    verdict = "met" if summary["goal_met"] else "MISSED"
    lines += [
        "",
        f"Commit -> receive p99 over all streams: {_f(a['p99_ms'])} ms "
        f"(goal <= {summary['goal_p99_ms']:.0f} ms): **{verdict}**",
        f"Stream on the replica that took the write: p50 {_f(same['p50_ms'])} / p99 "
        f"{_f(same['p99_ms'])} ms; on the other replica: p50 {_f(other['p50_ms'])} / p99 "
        f"{_f(other['p99_ms'])} ms",
        f"Writes: {w['sent']} sent, {w['ok']} 2xx, {w['failed']} failed {w['statuses']}; "
        f"answer p50 {_f(w['answer']['p50_ms'])} / p99 {_f(w['answer']['p99_ms'])} ms; "
        f"start behind schedule p99 {_f(w['start_lateness']['p99_ms'])} / max "
        f"{_f(w['start_lateness']['max_ms'])} ms",
        "Latency = receive time - the event's occurred_at (read before the write's transaction "
        "opens, so an upper bound of commit -> receive); lower bound = receive time - the "
        "writer's receipt of the write's answer (after the commit). Warm-up writes are checked "
        "for arrival but not timed.",
    ]
    lines += [f"Note: {note}" for note in summary["notes"]]
    return "\n".join(lines)


# --- set-up -------------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    for scheme in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql://" + url.removeprefix(scheme)
    return url


async def _admin(server_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    """A new database on the server `server_dsn` names, dropped afterwards."""
    name = f"taskhub_stream_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        base, _, _ = server_dsn.rpartition("/")
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _drop_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class Options:
    replicas: int
    workers: int
    streams_per_replica: int
    rate: float
    duration: float
    warmup: float
    update_share: float
    grace: float
    database_url: str
    redis_url: str
    redis_prefix: str
    throwaway_cluster: bool
    durable: bool
    strict: bool


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench.stream", description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per replica")
    parser.add_argument("--streams-per-replica", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of writes not timed")
    parser.add_argument("--update-share", type=float, default=0.5, help="0..1: updates")
    parser.add_argument("--grace", type=float, default=5.0, help="wait for late events (s)")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="a PostgreSQL server account that may create databases: a fresh database is "
        "made there and dropped afterwards",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="keys under a per-run prefix")
    parser.add_argument(
        "--redis-prefix", default="taskhub-stream-", help="the per-run key prefix starts so"
    )
    parser.add_argument(
        "--throwaway-cluster",
        action="store_true",
        help="own PostgreSQL and Redis as `make bench` starts them (durability off) instead",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="with --throwaway-cluster: keep PostgreSQL's durability settings (fsync, "
        "synchronous_commit, full_page_writes) at their defaults",
    )
    parser.add_argument("--strict", action="store_true", help="exit 3 when the goal is missed")
    args = parser.parse_args(argv)
    if not 0 <= args.update_share <= 1 or args.rate <= 0 or args.replicas < 1:
        parser.error("--update-share must be 0..1, --rate > 0, --replicas >= 1")
    if args.durable and not args.throwaway_cluster:
        parser.error("--durable goes with --throwaway-cluster")
    return Options(**{k.replace("-", "_"): v for k, v in vars(args).items()})


def backends(opts: Options, stack: ExitStack, notes: list[str]) -> tuple[str, str]:
    """(asyncpg DSN of a fresh database, Redis URL)."""
    if opts.throwaway_cluster:
        durability = ("fsync", "synchronous_commit", "full_page_writes")
        settings = {k: v for k, v in PG_SETTINGS.items() if not (opts.durable and k in durability)}
        pg = ThrowawayPostgres(settings)
        stack.callback(shielded(pg.stop))
        say(f"starting a throwaway PostgreSQL on port {pg.port}")
        pg.start()
        redis = ThrowawayRedis()
        stack.callback(shielded(redis.stop))
        redis.start()
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        durable = "durable (defaults)" if opts.durable else "durability off"
        notes.append(f"database: throwaway PostgreSQL 15, {durable} ({shown})")
        notes.append("redis: throwaway redis-server")
        return pg.dsn, redis.url
    dsn = stack.enter_context(fresh_database(_asyncpg_dsn(opts.database_url)))
    notes.append(
        f"database: a fresh database on {opts.database_url.rpartition('@')[2]} (its own settings, "
        "shared with whatever else uses that server)"
    )
    notes.append(f"redis: {opts.redis_url.rpartition('@')[2]}, keys under a per-run prefix")
    return dsn, opts.redis_url


def start_replicas(
    opts: Options, env: dict[str, str], home: Path, stack: ExitStack
) -> list[tuple[Server, int]]:
    taskhub = str(Path(sys.executable).parent / "taskhub")
    started: list[tuple[Server, int]] = []
    for n in range(opts.replicas):
        port = free_port()
        metrics = home / f"metrics-{n}"  # one multiprocess directory per replica
        metrics.mkdir()
        replica_env = {**env, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        log = RESULTS / f"stream-replica{n}.log"
        server = Server(f"replica {n}", [taskhub, "serve"], replica_env, home, log)
        stack.callback(shielded(server.stop))
        started.append((server, port))
    for server, port in started:
        seconds = server.wait_healthy(port, timeout=120)
        say(f"{server.name} healthy on port {port} after {seconds:.1f} s")
    return started


def _cpu(before: dict[int, int], after: dict[int, int], pids: Sequence[int]) -> float:
    return cpu_seconds_between(
        {p: t for p, t in before.items() if p in pids},
        {p: t for p, t in after.items() if p in pids},
    )


def _stop_reader(reader: multiprocessing.process.BaseProcess) -> None:
    if reader.is_alive():
        reader.kill()
    reader.join(5)


def run(opts: Options, stack: ExitStack) -> dict[str, Any]:
    notes: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="taskhub-stream-"))
    stack.callback(shutil.rmtree, home, True)
    dsn, redis_url = backends(opts, stack, notes)
    cfg = Config(0, 0, 0, 0, 0, 0, opts.workers, 10, 0, 0, "10000000/minute")
    env = taskhub_env(cfg, home, dsn, redis_url, port=8000)  # each replica gets its own
    prefix = f"{opts.redis_prefix}{uuid.uuid4().hex[:8]}:"
    env.update(REDIS_KEY_PREFIX=prefix, SERVE_WORKER="false")
    stack.callback(_drop_keys, redis_url, prefix)
    taskhub_cli(env, home, "migrate")
    email = f"stream-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(18) + "\n"
    taskhub_cli(env, home, "create-user", email, "--password-stdin", stdin=password)
    scopes = [arg for scope in SCOPES for arg in ("--scope", scope)]
    token = taskhub_cli(env, home, "create-api-key", email, "--name", "stream", *scopes)
    replicas = start_replicas(opts, env, home, stack)
    bases = [f"http://127.0.0.1:{port}" for _, port in replicas]
    updates_per_second = opts.rate * opts.update_share
    # Each task is updated once every TARGET_SECONDS: a slow answer does not overlap the next
    # update of the same task (which could lose the race: 409).
    count = max(1, math.ceil(updates_per_second * TARGET_SECONDS))
    targets = asyncio.run(create_targets(bases[0], token, count))
    busy = background_cpu_busy()
    tag = f"sb{secrets.token_hex(4)}"
    urls = [
        (n, f"{base}{STREAM_PATH}")
        for n, base in enumerate(bases)
        for _ in range(opts.streams_per_replica)
    ]
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    reader = context.Process(target=reader_main, args=(theirs, urls, token, tag), daemon=True)
    reader.start()
    stack.callback(_stop_reader, reader)
    if not ours.poll(90):
        raise RuntimeError("the streams did not open within 90 s")
    kind, opened = ours.recv()
    if kind != "ready" or any(status != 200 for status, _ in opened):
        raise RuntimeError(f"opening the streams failed: {opened}")
    say(f"{len(urls)} streams open; writing {opts.rate:g}/s for {opts.warmup + opts.duration:g} s")
    load_before = os.getloadavg()[0]
    servers = [pid for server, _ in replicas for pid in [server.process.pid, *server.workers()]]
    ticks = cpu_ticks([*servers, os.getpid(), reader.pid or 0])
    wall = time.perf_counter()
    seconds = opts.warmup + opts.duration
    writes = asyncio.run(
        write_load(bases, token, tag, targets, opts.rate, seconds, opts.update_share)
    )
    load_after = os.getloadavg()[0]
    wall = time.perf_counter() - wall
    after = cpu_ticks([*servers, os.getpid(), reader.pid or 0])
    used = {
        "replicas": _cpu(ticks, after, servers),
        "writer": _cpu(ticks, after, [os.getpid()]),
        "reader": _cpu(ticks, after, [reader.pid or 0]),
    }
    ok = sum(1 for w in writes if 200 <= w.status < 300)
    ours.send((ok, time.time() + opts.grace))
    if not ours.poll(opts.grace + 60):
        raise RuntimeError("the reader did not report")
    kind, payload = ours.recv()
    if kind != "done":
        raise RuntimeError(f"the reader failed: {payload}")
    streams = [
        StreamLog(
            s["index"],
            s["replica"],
            s["status"],
            s["error"],
            [Received(**e) for e in s["events"]],
        )
        for s in payload
    ]
    warmup_writes = int(opts.rate * opts.warmup)
    summary = summarise(writes, streams, warmup_writes)
    notes.append(
        f"CPU busy before the run (others' work): {busy:.0%}; load average {load_before:.1f} "
        f"at the start of the writes, {load_after:.1f} at their end ({os.cpu_count()} CPUs)"
    )
    notes.append(
        f"CPU used while writing ({wall:.1f} s): replicas {used['replicas']:.1f} s, writer "
        f"{used['writer']:.1f} s, stream reader {used['reader']:.1f} s"
    )
    notes.append(f"Taskhub code: git {git_state()}")
    summary["config"] = asdict(opts)
    summary["notes"] = notes
    summary["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    return summary


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM leaves through the same clean-up as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    held = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, _interrupt),
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            summary = run(opts, stack)
    except KeyboardInterrupt:
        say("interrupted; everything started has been stopped")
        return 130
    except (RuntimeError, OSError, subprocess.CalledProcessError, asyncpg.PostgresError) as exc:
        say(f"FAILED: {exc}")
        return 2
    finally:
        signal.signal(signal.SIGINT, held[0])
        signal.signal(signal.SIGTERM, held[1])
    return report(summary, opts.strict)


def report(summary: dict[str, Any], strict: bool) -> int:
    """Print and write the summary; the exit status."""
    table = render(summary)
    (RESULTS / "stream-latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "stream-latest.md").write_text(table + "\n")
    print()
    print(table)
    print(f"\n(written to {RESULTS}/stream-latest.{{json,md}})")
    if summary["writes"]["failed"] or summary["all"]["missing"]:
        print(
            f"\n!! {summary['writes']['failed']} failed writes, {summary['all']['missing']} "
            "events missing from streams: the figures are VOID (see the stream-replica*.log "
            "files there)"
        )
        return 1
    if not summary["goal_met"]:
        return 3 if strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
