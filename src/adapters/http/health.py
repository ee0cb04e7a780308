"""Operations endpoints: liveness, readiness (really asks each dependency), metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from adapters.http.metrics import DEPENDENCY_ERRORS, render_metrics
from adapters.http.services import services
from domain.ports import HealthProbe

log = structlog.get_logger("taskhub.health")


class Liveness(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


async def run_probes(probes: Sequence[HealthProbe], limit_seconds: float) -> dict[str, str]:
    """Ask every probe at once, each bounded by `limit_seconds`; "ok" or "failing" per
    dependency."""

    async def one(probe: HealthProbe) -> str:
        try:
            await asyncio.wait_for(probe.check(), limit_seconds)
        except Exception as exc:
            DEPENDENCY_ERRORS.labels(probe.name).inc()
            log.warning("readiness check failed", dependency=probe.name, error=type(exc).__name__)
            return "failing"
        return "ok"

    results = await asyncio.gather(*(one(p) for p in probes))
    return {p.name: r for p, r in zip(probes, results, strict=True)}


class OperationsController(Controller):
    include_in_schema = True
    tags = ["operations"]

    @get(
        "/health",
        operation_id="getHealth",
        summary="Liveness: the process answers (touches no dependency)",
        description="200 as long as the process serves requests; no authentication.",
    )
    async def health(self) -> Liveness:
        return Liveness(status="healthy")

    @get(
        "/health/ready",
        operation_id="getReadiness",
        summary="Readiness: database and (when configured) Redis answer",
        description="200 `ready` when every dependency answers within the health timeout; 503 "
        "`unavailable` naming the failing one otherwise. `redis` is `disabled` when no REDIS_URL "
        "is set. From SIGTERM on, 503 `draining` (the process still serves for "
        "SHUTDOWN_DRAIN_SECONDS, then stops).",
        responses={
            503: ResponseSpec(
                Readiness,
                description="A dependency is failing, or the process is draining",
                generate_examples=False,
            )
        },
    )
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Readiness]:
        found = services(request)
        checks = await run_probes(found.health_probes, found.health_timeout)
        if "redis" not in checks:
            checks["redis"] = "disabled"
        ok = all(v in ("ok", "disabled") for v in checks.values())
        if found.draining.active:
            return Response(Readiness(status="draining", checks=checks), status_code=503)
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )

    @get(
        "/metrics",
        operation_id="getMetrics",
        summary="Prometheus text exposition",
        description="Request counts and latencies by route template and status, requests in "
        "flight, database pool use and rate-limit decisions; no authentication.",
        media_type="text/plain",
    )
    async def metrics(self) -> Response[bytes]:
        body, content_type = render_metrics()
        # Litestar appends "; charset=utf-8" to a text/* media type itself: give it the type
        # without one, so the header names the charset once.
        return Response(body, media_type=content_type.replace("; charset=utf-8", ""))
