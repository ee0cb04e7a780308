"""The composition root's container: which adapter serves which port, chosen from settings.

- DATABASE_URL postgresql+asyncpg:// or sqlite+aiosqlite:// -> the SQL adapters;
  `memory://` -> the in-memory twins (tests and throwaway demos: nothing survives a restart).
- REDIS_URL set -> Redis admission (principal cache and rate limiter) and idempotency store;
  unset -> in-memory (one process).
Use cases are factories: every request gets fresh ones over a fresh unit of work. The app factory
hands them, and the long-lived services, to the handlers in one `Services` value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.events.log import LoggingEventPublisher
from adapters.http.cursors import CursorCodec
from adapters.http.metrics import EVENTS_WRITTEN, PrometheusDeliveryMonitor
from adapters.memory.admission import MemoryAdmission
from adapters.memory.concurrency import MemoryConcurrencyLimiter
from adapters.memory.events import MemoryEventFeed, MemoryFeedSignal
from adapters.memory.idempotency import MemoryIdempotencyStore
from adapters.memory.jobs import MemoryJobSchedule
from adapters.memory.principals import MemoryPrincipalCache
from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.rate_limit import MemoryRateLimiter
from adapters.memory.uow import MemoryDatabase
from adapters.memory.webhooks import MemoryWebhookUnitOfWork
from adapters.security.common_passwords import common_passwords
from adapters.security.crypto import FernetCipher
from adapters.security.ids import SystemClock, UuidV7Generator
from adapters.security.passwords import Argon2idPasswordHasher
from adapters.security.tokens import HmacTokenHasher, RandomSecretGenerator
from adapters.sql.engine import SqlHealthProbe, create_engine
from adapters.webhooks.lazy import LazyWebhookSender
from app.logs import fold_into_request
from app.rate_limit_fallback import FallbackRateLimiter
from app.resilience import FailOpenRateLimiter, FailSafePrincipalCache, decision_counter
from app.settings import Settings
from app.worker import Worker, worker_identity
from domain.jobs import Job
from domain.ports import ConcurrencyLimiter, HealthProbe, RateLimiter, RateLimitPolicy
from domain.ports.admission import Admission
from domain.ports.events import FeedSignal
from domain.ports.worker import JobSchedule
from domain.rate_limits import parse_policy
from domain.use_cases.events import ListProjectActivity, ListTaskActivity, ReadChanges
from domain.use_cases.idempotency import RunOnce
from domain.use_cases.identity import (
    AuthenticateBearer,
    GetCurrentUser,
    IssueApiKey,
    ListApiKeys,
    LogIn,
    LogOut,
    RegisterUser,
    RevokeApiKey,
)
from domain.use_cases.maintenance import PurgeExpiredSessions, PurgeExpiredTrash, PurgeOldEvents
from domain.use_cases.projects import (
    AddMember,
    CreateComment,
    CreateInbox,
    CreateProject,
    DeleteComment,
    DeleteProject,
    GetProject,
    ListComments,
    ListMembers,
    ListProjects,
    MemberProjects,
    RemoveMember,
    UpdateMember,
    UpdateProject,
)
from domain.use_cases.task_batch import RunTaskBatch
from domain.use_cases.tasks import (
    CreateTask,
    DeleteTask,
    DeleteTrashedTask,
    GetTask,
    ListTasks,
    ListTrash,
    RestoreTask,
    UpdateTask,
)
from domain.use_cases.webhooks import (
    CreateWebhook,
    DeleteWebhook,
    DeliverWebhooks,
    FanOutEvents,
    GetDelivery,
    GetWebhook,
    ListDeliveries,
    ListWebhooks,
    PingWebhook,
    PurgeFinishedDeliveries,
    RedeliverDelivery,
    ReencryptWebhookSecrets,
    RotateWebhookSecret,
    UpdateWebhook,
)
from domain.webhooks import DeliveryRules, TargetPolicy, parse_duration, parse_schedule

MEMORY_URL = "memory://"


def _engine(settings: Settings) -> AsyncEngine | None:
    if settings.DATABASE_URL == MEMORY_URL:
        return None
    return create_engine(
        settings.DATABASE_URL,
        pool_size=settings.SQLALCHEMY_POOL_SIZE,
        max_overflow=settings.SQLALCHEMY_POOL_OVERFLOW,
        pool_recycle=settings.SQLALCHEMY_POOL_RECYCLE,
        pool_timeout=settings.SQLALCHEMY_POOL_TIMEOUT,
        statement_timeout_ms=settings.DATABASE_STATEMENT_TIMEOUT_MS,
        pre_ping=settings.DATABASE_POOL_PRE_PING,
        pgbouncer=settings.DATABASE_PGBOUNCER,
    )


def _connection_slots(settings: Settings) -> Any:
    if settings.DATABASE_URL == MEMORY_URL:
        return None
    from adapters.sql.uow import ConnectionSlots

    size = settings.SQLALCHEMY_POOL_SIZE + settings.SQLALCHEMY_POOL_OVERFLOW
    return ConnectionSlots(size, settings.SQLALCHEMY_POOL_TIMEOUT)


def _uow_factory(
    engine: AsyncEngine | None,
    memory: MemoryDatabase,
    slots: Any,
    on_events: Callable[[int], None] | None = None,
    *,
    read_only: bool = False,
) -> Callable[[], Any]:
    if engine is None:
        return lambda: MemoryProjectUnitOfWork(memory, on_events)
    from adapters.sql.uow import SqlUnitOfWork

    return lambda: SqlUnitOfWork(engine, read_only=read_only, slots=slots, on_events=on_events)


def _webhook_uow_factory(
    engine: AsyncEngine | None, memory: MemoryDatabase, slots: Any
) -> Callable[[], Any]:
    """Webhooks, deliveries and the fan-out position, with memberships (SQLAlchemy mode)."""
    if engine is None:
        return lambda: MemoryWebhookUnitOfWork(memory)
    return _uow_factory(engine, memory, slots)


def _task_uow_factory(
    engine: AsyncEngine | None,
    memory: MemoryDatabase,
    slots: Any,
    on_events: Callable[[int], None] | None = None,
    *,
    read_only: bool = False,
) -> Callable[[], Any]:
    """PostgreSQL: the SQL unit of work in its raw-connection mode (reads in autocommit, writes
    in as few round trips as the contract allows); else the general one."""
    if engine is None or engine.dialect.name != "postgresql":
        return _uow_factory(engine, memory, slots, on_events, read_only=read_only)
    from adapters.sql.uow import SqlUnitOfWork

    return lambda: SqlUnitOfWork(
        engine, read_only=read_only, slots=slots, raw=True, on_events=on_events
    )


def _events_committed(signal: FeedSignal) -> Callable[[int], None]:
    """What a commit that wrote events does next: count them, wake the change streams."""

    def committed(count: int) -> None:
        EVENTS_WRITTEN.inc(count)
        signal.notify()

    return committed


def _redis_client(settings: Settings) -> Any:
    if settings.REDIS_URL is None:
        return None
    from adapters.redis.client import create_redis_client

    return create_redis_client(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout_seconds=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
        failure_cooldown=settings.REDIS_FAILURE_COOLDOWN,
    )


def _rate_limiter(settings: Settings, client: Any) -> RateLimiter:
    if client is None:
        return FailOpenRateLimiter(MemoryRateLimiter())
    from adapters.redis.rate_limit import RedisRateLimiter

    return FailOpenRateLimiter(RedisRateLimiter(client, settings.REDIS_KEY_PREFIX))


def _search_slots(settings: Settings, client: Any) -> ConcurrencyLimiter:
    """Each user's concurrent searches (task lists with `q`): per process without Redis."""
    limit = settings.CONCURRENT_SEARCHES_PER_USER
    if client is None:
        return MemoryConcurrencyLimiter(limit)
    from adapters.redis.concurrency import RedisConcurrencyLimiter

    return RedisConcurrencyLimiter(client, settings.REDIS_KEY_PREFIX, "search", limit)


def _account_rate_limiter(settings: Settings, client: Any) -> RateLimiter:
    """The limiter of log-in and sign-up attempts: never fails open. Without Redis it is the
    process's own; with Redis it falls back to counting in the process while Redis is down."""
    if client is None:
        return FailOpenRateLimiter(MemoryRateLimiter())  # (cannot fail: only counts metrics)
    from adapters.redis.rate_limit import RedisRateLimiter

    return FallbackRateLimiter(
        RedisRateLimiter(client, settings.REDIS_KEY_PREFIX), MemoryRateLimiter()
    )


def _idempotency_trouble(what: str, error: str) -> None:
    structlog.get_logger("taskhub.idempotency").warning(what, error=error)


def _idempotency_store(settings: Settings, client: Any) -> Any:
    if client is None:
        return MemoryIdempotencyStore()
    from adapters.redis.idempotency import RedisIdempotencyStore

    return RedisIdempotencyStore(client, settings.REDIS_KEY_PREFIX)


def _redis_principal_cache(settings: Settings, client: Any, policy: RateLimitPolicy) -> Any:
    if client is None:
        return None
    from adapters.redis.principals import RedisPrincipalCache

    return RedisPrincipalCache(client, settings.REDIS_KEY_PREFIX, policy)


def _principal_cache(redis_cache: Any) -> Any:
    if redis_cache is None:
        return MemoryPrincipalCache()
    return FailSafePrincipalCache(redis_cache)


def _health_probes(engine: AsyncEngine | None, redis_client: Any) -> list[HealthProbe]:
    probes: list[HealthProbe] = [SqlHealthProbe(engine)] if engine is not None else []
    if redis_client is not None:
        from adapters.redis.client import RedisHealthProbe

        probes.append(RedisHealthProbe(redis_client))
    return probes


def _admission(
    authenticate: AuthenticateBearer,
    rate_limiter: RateLimiter,
    policy: RateLimitPolicy,
    redis_client: Any,
    redis_cache: Any,
) -> Admission:
    if redis_client is None:
        return MemoryAdmission(authenticate.execute, rate_limiter, policy)
    from adapters.redis.admission import RedisAdmission, RedisRequestGate

    return RedisAdmission(
        RedisRequestGate(redis_client, redis_cache),
        cache_key=authenticate.cache_key,
        authenticate=authenticate.execute,
        limiter=rate_limiter,
        counted=decision_counter(policy),
    )


def _change_feed(engine: AsyncEngine | None, memory: MemoryDatabase) -> Any:
    """The change feed over the event log (`EventFeed`, and the `ChangeFeed` port)."""
    if engine is None:
        return MemoryEventFeed(memory.event_rows, memory.tables)
    from adapters.sql.events import SqlEventFeed

    return SqlEventFeed(engine)


def _feed_signal(settings: Settings, client: Any) -> FeedSignal:
    """Change-stream wake-ups: this process's own, fanned out over Redis pub/sub when Redis is
    configured (every replica's streams wake at a commit anywhere)."""
    local = MemoryFeedSignal()
    if client is None or settings.REDIS_URL is None:
        return local
    from adapters.redis.feed import RedisFeedSignal

    return RedisFeedSignal(client, settings.REDIS_URL, settings.REDIS_KEY_PREFIX, local)


def _job_schedule(engine: AsyncEngine | None) -> JobSchedule:
    if engine is None:
        return MemoryJobSchedule()
    from adapters.sql.jobs import SqlJobSchedule

    return SqlJobSchedule(engine)


def _worker_jobs(
    settings: Settings,
    purge_sessions: PurgeExpiredSessions,
    fan_out: FanOutEvents,
    deliver: DeliverWebhooks,
    purge_deliveries: PurgeFinishedDeliveries,
    purge_trash: PurgeExpiredTrash,
    purge_events: PurgeOldEvents,
) -> list[Job]:
    """Every periodic job, by name (the name keys its schedule row and its metrics)."""
    poll = timedelta(seconds=settings.WORKER_POLL_SECONDS)
    return [
        Job(
            "purge_expired_sessions",
            timedelta(seconds=settings.SESSION_PURGE_INTERVAL_SECONDS),
            purge_sessions.step,
        ),
        # One runner at a time walks the change feed; every worker delivers (each claims its own).
        # Both run as soon as a commit writes events; the poll is the fallback.
        Job("webhook_fan_out", poll, fan_out.step, wake_on_events=True),
        Job("webhook_deliveries", poll, deliver.step, exclusive=False, wake_on_events=True),
        Job("purge_webhook_deliveries", timedelta(hours=1), purge_deliveries.step),
        Job(
            "purge_trash",
            timedelta(seconds=settings.TRASH_PURGE_INTERVAL_SECONDS),
            purge_trash.step,
        ),
        Job(
            "purge_old_events",
            timedelta(seconds=settings.EVENT_PURGE_INTERVAL_SECONDS),
            purge_events.step,
        ),
    ]


def _delivery_rules(settings: Settings) -> DeliveryRules:
    return DeliveryRules(
        parse_schedule(settings.WEBHOOK_RETRY_SCHEDULE),
        parse_duration(settings.WEBHOOK_DISABLE_AFTER),
    )


def _delivery_lease(settings: Settings) -> timedelta:
    """Long enough for one attempt (its time limit) and the transactions around it."""
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT + 30)


def _worker(
    settings: Settings,
    jobs: list[Job],
    schedule: JobSchedule,
    clock: Any,
    holder: str,
    wake: FeedSignal,
) -> Worker:
    """The loop wakes on the change streams' signal: a commit that wrote events, in this process
    or (with Redis) on any replica."""
    return Worker(
        jobs,
        schedule,
        clock,
        holder=holder,
        poll_seconds=settings.WORKER_POLL_SECONDS,
        lease=timedelta(seconds=settings.WORKER_LEASE_SECONDS),
        wake=wake,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(_engine, settings)
    memory_database = providers.Singleton(MemoryDatabase)
    connection_slots = providers.Singleton(_connection_slots, settings)
    redis_client = providers.Singleton(_redis_client, settings)
    feed_signal = providers.Singleton(_feed_signal, settings, redis_client)
    events_committed = providers.Singleton(_events_committed, feed_signal)
    uow_factory = providers.Singleton(
        _uow_factory, engine, memory_database, connection_slots, events_committed
    )
    # Queries (one SELECT each) run without a transaction around them: fewer round trips.
    read_uow_factory = providers.Singleton(
        _uow_factory, engine, memory_database, connection_slots, read_only=True
    )
    uow = providers.Factory(lambda make: make(), uow_factory)
    task_uow_factory = providers.Singleton(
        _task_uow_factory, engine, memory_database, connection_slots, events_committed
    )
    task_read_uow_factory = providers.Singleton(
        _task_uow_factory, engine, memory_database, connection_slots, read_only=True
    )
    # Projects, members and comments: the general unit of work serves their ports too.
    project_uow_factory = uow_factory
    rate_limiter = providers.Singleton(_rate_limiter, settings, redis_client)
    account_rate_limiter = providers.Singleton(_account_rate_limiter, settings, redis_client)
    idempotency_store = providers.Singleton(_idempotency_store, settings, redis_client)
    search_slots = providers.Singleton(_search_slots, settings, redis_client)
    admission_policy = providers.Singleton(
        lambda s: parse_policy("default", s.RATE_LIMIT_DEFAULT), settings
    )
    redis_principal_cache = providers.Singleton(
        _redis_principal_cache, settings, redis_client, admission_policy
    )
    principal_cache = providers.Singleton(_principal_cache, redis_principal_cache)
    health_probes = providers.Singleton(_health_probes, engine, redis_client)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidV7Generator)
    secrets = providers.Singleton(RandomSecretGenerator)
    token_hasher = providers.Singleton(
        lambda s: HmacTokenHasher(s.secret("SESSION_HASH_SECRET")), settings
    )
    password_hasher = providers.Singleton(Argon2idPasswordHasher)
    events = providers.Singleton(LoggingEventPublisher, fold=fold_into_request)
    cursor_codec = providers.Singleton(
        lambda s: CursorCodec(s.secret("SESSION_HASH_SECRET").encode()), settings
    )

    # identity
    register_user = providers.Factory(
        RegisterUser,
        uow,
        password_hasher,
        clock,
        ids,
        allow_signup=settings.provided.ALLOW_SIGNUP,
        rate_limiter=account_rate_limiter,
        per_address=providers.Callable(
            lambda s: parse_policy("signup-address", s.RATE_LIMIT_SIGNUP), settings
        ),
        common_passwords=providers.Callable(common_passwords),
    )
    log_in = providers.Factory(
        LogIn,
        uow,
        password_hasher,
        token_hasher,
        secrets,
        clock,
        ids,
        account_rate_limiter,
        session_ttl=providers.Callable(lambda s: timedelta(seconds=s.SESSION_TTL), settings),
        per_address=providers.Callable(
            lambda s: parse_policy("login-address", s.RATE_LIMIT_LOGIN), settings
        ),
        per_email_address=providers.Callable(
            lambda s: parse_policy("login-email-address", s.RATE_LIMIT_LOGIN), settings
        ),
        per_email=providers.Callable(
            lambda s: parse_policy("login-email", s.RATE_LIMIT_LOGIN_EMAIL), settings
        ),
    )
    log_out = providers.Factory(LogOut, uow, clock, principal_cache)
    get_current_user = providers.Factory(GetCurrentUser, uow)
    issue_api_key = providers.Factory(
        IssueApiKey,
        uow,
        token_hasher,
        secrets,
        clock,
        ids,
        max_keys=settings.provided.MAX_API_KEYS_PER_USER,
        projects_of=providers.Callable(lambda f: MemberProjects(f).execute, project_uow_factory),
    )
    list_api_keys = providers.Factory(ListApiKeys, uow)
    revoke_api_key = providers.Factory(RevokeApiKey, uow, clock, principal_cache)
    authenticate = providers.Singleton(
        AuthenticateBearer,
        uow_factory,
        token_hasher,
        clock,
        # Only an explicitly configured token enables service calls (no development default).
        service_token=settings.provided.SERVICE_AUTH_TOKEN,
        cache=principal_cache,
        cache_ttl=providers.Callable(lambda s: timedelta(seconds=s.PRINCIPAL_CACHE_TTL), settings),
    )
    admission = providers.Singleton(
        _admission,
        authenticate,
        rate_limiter,
        admission_policy,
        redis_client,
        redis_principal_cache,
    )

    # tasks
    create_task = providers.Factory(
        CreateTask,
        task_uow_factory,
        clock,
        ids,
        events,
        max_tasks=settings.provided.MAX_TASKS_PER_USER,
    )
    get_task = providers.Factory(GetTask, task_read_uow_factory)
    list_tasks = providers.Factory(ListTasks, task_read_uow_factory)
    update_task = providers.Factory(UpdateTask, task_uow_factory, clock, events, ids=ids)
    delete_task = providers.Factory(DeleteTask, task_uow_factory, clock, events, ids=ids)
    run_task_batch = providers.Factory(
        RunTaskBatch,
        task_uow_factory,
        clock,
        ids,
        events,
        max_tasks=settings.provided.MAX_TASKS_PER_USER,
    )
    list_trash = providers.Factory(ListTrash, task_read_uow_factory)
    restore_task = providers.Factory(RestoreTask, task_uow_factory, clock, events, ids=ids)
    delete_trashed_task = providers.Factory(
        DeleteTrashedTask, task_uow_factory, clock, events, ids=ids
    )

    # projects, members, comments
    create_project = providers.Factory(CreateProject, project_uow_factory, clock, ids)
    list_projects = providers.Factory(ListProjects, project_uow_factory)
    get_project = providers.Factory(GetProject, project_uow_factory)
    update_project = providers.Factory(UpdateProject, project_uow_factory, clock, ids=ids)
    delete_project = providers.Factory(DeleteProject, project_uow_factory, clock=clock, ids=ids)
    list_members = providers.Factory(ListMembers, project_uow_factory)
    add_member = providers.Factory(AddMember, project_uow_factory, clock, ids=ids)
    update_member = providers.Factory(UpdateMember, project_uow_factory, clock=clock, ids=ids)
    remove_member = providers.Factory(RemoveMember, project_uow_factory, clock, ids=ids)
    create_comment = providers.Factory(CreateComment, project_uow_factory, clock, ids)
    list_comments = providers.Factory(ListComments, project_uow_factory)
    delete_comment = providers.Factory(DeleteComment, project_uow_factory, clock=clock, ids=ids)

    # events: activity, the change feed (the webhook fan-out reads `change_feed` too)
    change_feed = providers.Singleton(_change_feed, engine, memory_database)
    list_task_activity = providers.Factory(ListTaskActivity, read_uow_factory)
    list_project_activity = providers.Factory(ListProjectActivity, read_uow_factory)
    read_changes = providers.Factory(ReadChanges, change_feed)
    create_inbox = providers.Factory(CreateInbox, project_uow_factory, clock, ids)

    # webhooks
    webhook_uow_factory = providers.Singleton(
        _webhook_uow_factory, engine, memory_database, connection_slots
    )
    cipher = providers.Singleton(lambda s: FernetCipher(s.encryption_keys), settings)
    target_policy = providers.Singleton(
        lambda s: TargetPolicy(s.WEBHOOK_ALLOW_HTTP, s.WEBHOOK_ALLOW_PRIVATE_TARGETS), settings
    )
    webhook_sender = providers.Singleton(
        lambda s, policy: LazyWebhookSender(policy, timeout=s.WEBHOOK_TIMEOUT),
        settings,
        target_policy,
    )
    create_webhook = providers.Factory(
        CreateWebhook, webhook_uow_factory, clock, ids, secrets, cipher, target_policy
    )
    list_webhooks = providers.Factory(ListWebhooks, webhook_uow_factory)
    get_webhook = providers.Factory(GetWebhook, webhook_uow_factory)
    update_webhook = providers.Factory(UpdateWebhook, webhook_uow_factory, clock, target_policy)
    delete_webhook = providers.Factory(DeleteWebhook, webhook_uow_factory)
    rotate_webhook_secret = providers.Factory(
        RotateWebhookSecret, webhook_uow_factory, clock, secrets, cipher
    )
    ping_webhook = providers.Factory(PingWebhook, webhook_uow_factory, clock, ids)
    list_deliveries = providers.Factory(ListDeliveries, webhook_uow_factory)
    get_delivery = providers.Factory(GetDelivery, webhook_uow_factory)
    redeliver = providers.Factory(RedeliverDelivery, webhook_uow_factory, clock)
    reencrypt_webhook_secrets = providers.Factory(
        ReencryptWebhookSecrets, webhook_uow_factory, cipher
    )

    # worker
    worker_holder = providers.Singleton(worker_identity)
    job_schedule = providers.Singleton(_job_schedule, engine)
    purge_expired_sessions = providers.Factory(
        PurgeExpiredSessions,
        uow_factory,
        clock,
        retention=providers.Callable(lambda s: timedelta(days=s.SESSION_RETENTION_DAYS), settings),
        batch_size=settings.provided.WORKER_BATCH_SIZE,
    )
    fan_out_events = providers.Factory(
        FanOutEvents,
        webhook_uow_factory,
        change_feed,
        clock,
        ids,
        batch_size=settings.provided.WORKER_BATCH_SIZE,
    )
    deliver_webhooks = providers.Factory(
        DeliverWebhooks,
        webhook_uow_factory,
        webhook_sender,
        cipher,
        clock,
        ids,
        providers.Singleton(PrometheusDeliveryMonitor),
        providers.Callable(_delivery_rules, settings),
        holder=worker_holder,
        lease=providers.Callable(_delivery_lease, settings),
        batch_size=settings.provided.WEBHOOK_CONCURRENCY,
    )
    purge_webhook_deliveries = providers.Factory(
        PurgeFinishedDeliveries,
        webhook_uow_factory,
        clock,
        retention=providers.Callable(
            lambda s: timedelta(days=s.WEBHOOK_DELIVERY_RETENTION_DAYS), settings
        ),
        batch_size=settings.provided.WORKER_BATCH_SIZE,
    )
    purge_old_events = providers.Factory(
        PurgeOldEvents,
        change_feed,
        clock,
        retention=providers.Callable(lambda s: timedelta(days=s.EVENT_RETENTION_DAYS), settings),
        batch_size=settings.provided.WORKER_BATCH_SIZE,
    )
    purge_trash = providers.Factory(
        PurgeExpiredTrash,
        task_uow_factory,
        clock,
        ids,
        retention=providers.Callable(lambda s: timedelta(days=s.TRASH_RETENTION_DAYS), settings),
        batch_size=settings.provided.WORKER_BATCH_SIZE,
    )
    worker_jobs = providers.Singleton(
        _worker_jobs,
        settings,
        purge_expired_sessions,
        fan_out_events,
        deliver_webhooks,
        purge_webhook_deliveries,
        purge_trash,
        purge_old_events,
    )
    worker = providers.Singleton(
        _worker, settings, worker_jobs, job_schedule, clock, worker_holder, feed_signal
    )

    # the idempotency-key protocol (MCP tools; the HTTP layer runs it around its handlers)
    run_once = providers.Factory(RunOnce, idempotency_store, _idempotency_trouble)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)


async def close_container(container: Container) -> None:
    """Graceful shutdown: wake and end the change streams, dispose the engine's pool and close
    the Redis pool."""
    await container.feed_signal().close()
    engine = container.engine()
    if engine is not None:
        await engine.dispose()
    client = container.redis_client()
    if client is not None:
        await client.aclose()
    await container.webhook_sender().aclose()
