"""Prometheus metrics of the HTTP service, and the `/metrics` exposition.

With several uvicorn workers, prometheus-client's multiprocess mode is on when
PROMETHEUS_MULTIPROC_DIR is set before this module is imported (the CLI sees to it); a scrape then
aggregates every worker's files.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from domain.ports.webhooks import DeliveryBacklog

HTTP_REQUESTS = Counter(
    "taskhub_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "taskhub_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_IN_FLIGHT = Gauge(
    "taskhub_http_requests_in_flight",
    "HTTP requests being served now.",
    multiprocess_mode="livesum",
)
RATE_LIMIT_DECISIONS = Counter(
    "taskhub_rate_limit_decisions_total",
    "Rate-limit decisions by policy and outcome (allowed, limited, failed_open, "
    "fallback_allowed, fallback_limited).",
    ["policy", "decision"],
)
DB_POOL_CHECKED_OUT = Gauge(
    "taskhub_db_pool_checked_out",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_OVERFLOW = Gauge(
    "taskhub_db_pool_overflow",
    "Database connections open beyond the pool size.",
    multiprocess_mode="livesum",
)
EVENTS_WRITTEN = Counter(
    "taskhub_events_written_total",
    "Events committed with their changes (activity and change feed).",
)
FEED_READS = Counter(
    "taskhub_feed_reads_total",
    "Reads of the change feed, by kind (page: GET /v1/changes; stream: a stream's reads).",
    ["kind"],
)
STREAMS_OPEN = Gauge(
    "taskhub_change_streams_open",
    "Change streams (GET /v1/changes/stream) open now.",
    multiprocess_mode="livesum",
)
STREAM_DELIVERY_LATENCY = Histogram(
    "taskhub_change_stream_delivery_seconds",
    "From an event's change to its delivery on a change stream.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_POOL_CAPACITY = Gauge(
    "taskhub_db_pool_capacity",
    "Database connections the pool may open (pool size plus overflow), for saturation ratios.",
    multiprocess_mode="livesum",
)
DEPENDENCY_ERRORS = Counter(
    "taskhub_dependency_errors_total",
    "Errors talking to a dependency (database, redis), by dependency.",
    ["dependency"],
)

# The job's label is `worker_job`: Prometheus gives every scraped series a `job` label of its own.
WORKER_JOB_RUNS = Counter(
    "taskhub_worker_job_runs_total",
    "Worker job runs by job and outcome (success, failed, interrupted, lease_lost).",
    ["worker_job", "outcome"],
)
WORKER_JOB_ITEMS = Counter(
    "taskhub_worker_job_items_total",
    "Items the worker's job steps handled (rows purged, ...), by job.",
    ["worker_job"],
)
WORKER_JOB_LAST_SUCCESS = Gauge(
    "taskhub_worker_job_last_success_timestamp_seconds",
    "Unix time of the job's last successful run by any worker (from the shared schedule).",
    ["worker_job"],
    multiprocess_mode="max",
)
WORKER_JOB_INTERVAL = Gauge(
    "taskhub_worker_job_interval_seconds",
    "How often the job is meant to run, in seconds (for staleness alerts).",
    ["worker_job"],
    multiprocess_mode="max",
)

WEBHOOK_ATTEMPTS = Counter(
    "taskhub_webhook_attempts_total",
    "Webhook delivery attempts by outcome (success, failure, blocked).",
    ["outcome"],
)
WEBHOOK_PENDING = Gauge(
    "taskhub_webhook_deliveries_pending",
    "Webhook deliveries waiting for an attempt (due now or retrying later).",
    multiprocess_mode="mostrecent",
)
WEBHOOK_LAG = Gauge(
    "taskhub_webhook_delivery_lag_seconds",
    "How long the oldest due webhook delivery has been waiting (0 when none is due).",
    multiprocess_mode="mostrecent",
)
WEBHOOK_DISABLED = Gauge(
    "taskhub_webhooks_disabled",
    "Webhooks disabled (by their owner, after a 410, or after failing too long).",
    multiprocess_mode="mostrecent",
)


class BufferedGauge:
    """A gauge that moves on every request (in-flight requests, pooled connections in use),
    kept in the process and written through to prometheus-client at most once per `interval`
    seconds, plus once after the last change. In multiprocess mode every write is a locked
    write to a memory-mapped file, too costly to do several times per request.
    A scrape sees the value as of at most `interval` ago. Outside a running event loop it
    writes at once."""

    def __init__(self, gauge: Gauge, interval: float = 0.25) -> None:
        self._gauge = gauge
        self._interval = interval
        self._value = 0.0
        self._written = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def value(self) -> float:
        return self._value

    def inc(self, amount: float = 1) -> None:
        self._value += amount
        self._schedule()

    def dec(self, amount: float = 1) -> None:
        self._value -= amount
        self._schedule()

    def set(self, value: float) -> None:
        self._value = value
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._timer is not None and self._loop is loop:
            return  # a write is due already; it will take the latest value
        self._loop = loop
        self._timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        self._timer = None
        if self._value != self._written:
            self._written = self._value
            self._gauge.set(self._value)


HTTP_IN_FLIGHT_NOW = BufferedGauge(HTTP_IN_FLIGHT)
DB_POOL_CHECKED_OUT_NOW = BufferedGauge(DB_POOL_CHECKED_OUT)
DB_POOL_OVERFLOW_NOW = BufferedGauge(DB_POOL_OVERFLOW)


def render_metrics() -> tuple[bytes, str]:
    """The text exposition of every metric, all workers aggregated in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Drop a finished worker's live gauges from the multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class PrometheusDeliveryMonitor:
    """The webhook delivery job's `DeliveryMonitor`: attempts by outcome, and the backlog."""

    def attempted(self, outcome: str) -> None:
        WEBHOOK_ATTEMPTS.labels(outcome).inc()

    def backlog(self, backlog: DeliveryBacklog, now: datetime) -> None:
        WEBHOOK_PENDING.set(backlog.pending)
        WEBHOOK_DISABLED.set(backlog.disabled_webhooks)
        due = backlog.oldest_due_at
        WEBHOOK_LAG.set(max(0.0, (now - due).total_seconds()) if due is not None else 0.0)
