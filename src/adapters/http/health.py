"""Operations endpoints: liveness, readiness (really asks each dependency), metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import structlog
from litestar import Controller, Response, get
from litestar.datastructures import State

from adapters.http.metrics import DEPENDENCY_ERRORS, render_metrics
from domain.ports import HealthProbe

log = structlog.get_logger("taskhub.health")


class Draining:
    """Whether this process is shutting down. Once set, readiness answers 503 `draining` so a
    load balancer stops sending new requests while the process still serves the ones it gets."""

    def __init__(self) -> None:
        self.active = False

    def begin(self) -> None:
        self.active = True


class Liveness(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


async def run_probes(probes: Sequence[HealthProbe], limit_seconds: float) -> dict[str, str]:
    """Ask every probe at once, each bounded by `timeout`; "ok" or "failing" per dependency."""

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

    @get("/health", summary="Liveness: the process answers (touches no dependency)")
    async def health(self) -> Liveness:
        return Liveness(status="healthy")

    @get(
        "/health/ready",
        summary="Readiness: database and (when configured) Redis answer",
        description="200 `ready` when every dependency answers within the health timeout; 503 "
        "`unavailable` naming the failing one otherwise. `redis` is `disabled` when no REDIS_URL "
        "is set. From SIGTERM on, 503 `draining` (the process still serves for "
        "SHUTDOWN_DRAIN_SECONDS, then stops).",
        responses={},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        probes: Sequence[HealthProbe] = state.health_probes
        checks = await run_probes(probes, state.health_timeout)
        if "redis" not in checks:
            checks["redis"] = "disabled"
        ok = all(v in ("ok", "disabled") for v in checks.values())
        draining: Draining = state.draining
        if draining.active:
            return Response(Readiness(status="draining", checks=checks), status_code=503)
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
        )

    @get("/metrics", summary="Prometheus text exposition", media_type="text/plain")
    async def metrics(self) -> Response[bytes]:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)
