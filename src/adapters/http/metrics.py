"""Prometheus metrics of the HTTP service, and the `/metrics` exposition.

With several uvicorn workers, prometheus-client's multiprocess mode is on when
PROMETHEUS_MULTIPROC_DIR is set before this module is imported (the CLI sees to it); a scrape then
aggregates every worker's files.
"""

from __future__ import annotations

import os

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
    "Rate-limit decisions by policy and outcome (allowed, limited, failed_open).",
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
DEPENDENCY_ERRORS = Counter(
    "taskhub_dependency_errors_total",
    "Errors talking to a dependency (database, redis), by dependency.",
    ["dependency"],
)


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
