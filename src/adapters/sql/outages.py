"""Which database errors are outages, and the `Unavailable` they become."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout

from domain.errors import Unavailable

log = structlog.get_logger("taskhub.sql")


def is_outage(exc: Exception) -> bool:
    """The database is unreachable, restarting or too slow (not a bug, not bad input), whether
    SQLAlchemy wrapped the driver's error or the driver raised it itself."""
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or _is_timeout(exc.orig)
        )
    return isinstance(exc, OSError | TimeoutError | SqlalchemyTimeout) or _is_timeout(exc)


# asyncpg's statement timeout (QueryCanceledError), its connection-level errors (SQLSTATE class
# 08) and operator intervention (class 57: shutdown, terminated backend, cancelled statement).
_OUTAGE_ERRORS = frozenset(
    {
        "QueryCanceledError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "PostgresConnectionError",
        "OperatorInterventionError",
    }
)


def _is_timeout(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    return any(kind.__name__ in _OUTAGE_ERRORS for kind in type(orig).__mro__)


def unavailable(exc: BaseException) -> Unavailable:
    log.warning("database unavailable", error=type(exc).__name__)
    return Unavailable("The database is unavailable right now; retry shortly.")
