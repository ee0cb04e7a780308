"""The composition root's container: which adapter serves which port, chosen from settings."""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.engine import SqlHealthProbe, create_engine
from app.settings import Settings
from domain.ports import HealthProbe


def _engine(settings: Settings) -> AsyncEngine:
    return create_engine(
        settings.DATABASE_URL,
        pool_size=settings.SQLALCHEMY_POOL_SIZE,
        max_overflow=settings.SQLALCHEMY_POOL_OVERFLOW,
        pool_recycle=settings.SQLALCHEMY_POOL_RECYCLE,
        pool_timeout=settings.SQLALCHEMY_POOL_TIMEOUT,
        statement_timeout_ms=settings.DATABASE_STATEMENT_TIMEOUT_MS,
    )


def _redis_client(settings: Settings) -> Any:
    if settings.REDIS_URL is None:
        return None
    from adapters.redis.client import create_redis_client

    return create_redis_client(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout_seconds=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
    )


def _health_probes(engine: AsyncEngine, redis_client: Any) -> list[HealthProbe]:
    probes: list[HealthProbe] = [SqlHealthProbe(engine)]
    if redis_client is not None:
        from adapters.redis.client import RedisHealthProbe

        probes.append(RedisHealthProbe(redis_client))
    return probes


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(_engine, settings)
    redis_client = providers.Singleton(_redis_client, settings)
    health_probes = providers.Singleton(_health_probes, engine, redis_client)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)


async def close_container(container: Container) -> None:
    """Graceful shutdown: dispose the engine's pool and close the Redis pool."""
    engine: AsyncEngine = container.engine()
    await engine.dispose()
    client = container.redis_client()
    if client is not None:
        await client.aclose()
