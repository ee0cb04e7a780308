"""Core statements compiled once to the driver's own text, for running on a raw connection.

`positional_text` turns a statement into asyncpg's `$n` SQL plus the names of its bound
parameters in `$n` order, through SQLAlchemy's public compiler (`compile`, `string`,
`positiontup`, `binds`). A raw connection skips SQLAlchemy's per-type bind and result
processing, so the compilation refuses any statement that would need it: such a statement must
be written (cast a column, pass a value in driver form) so that it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, ClauseElement, Dialect, Executable, String
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True, slots=True)
class PositionalText:
    """The SQL text and the parameter names in the order of its `$1`, `$2`, ..."""

    sql: str
    names: tuple[str, ...]

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


def _needs_processing(type_: TypeEngine[Any], dialect: Dialect, *, result: bool) -> bool:
    """True when SQLAlchemy would convert values of this type on `dialect`.

    Arrays of strings are let through: their processors only copy the sequence into a list,
    which the callers give (parameters) or take (results, any sequence) already.
    """
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, ARRAY) and isinstance(impl.item_type, String):
        return False
    if result:
        return impl.result_processor(dialect, None) is not None
    return impl.bind_processor(dialect) is not None


def positional_text(statement: Executable, dialect: Dialect) -> PositionalText:
    """Compile `statement` for `dialect` (a positional paramstyle, asyncpg's `$n`).

    Raises ValueError when a bound parameter or a selected column would need SQLAlchemy's
    per-type processing, which the raw path does not run.
    """
    if not isinstance(statement, ClauseElement):
        raise TypeError(f"not a compilable statement: {statement!r}")
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        raise ValueError(f"{dialect.name} does not compile to positional parameters")
    for name, bind in compiled.binds.items():
        if _needs_processing(bind.type, dialect, result=False):
            raise ValueError(f"parameter {name!r} needs bind processing on {dialect.name}")
    columns: Sequence[Any] = getattr(statement, "selected_columns", ())
    for column in columns:
        if _needs_processing(column.type, dialect, result=True):
            raise ValueError(f"column {column.name!r} needs result processing on {dialect.name}")
    return PositionalText(compiled.string, tuple(compiled.positiontup))


class TextCache:
    """Each statement's text compiled on first use, then a dict lookup per call."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._texts: dict[Executable, PositionalText] = {}

    def get(self, statement: Executable) -> PositionalText:
        text = self._texts.get(statement)
        if text is None:
            text = self._texts[statement] = positional_text(statement, self._dialect)
        return text
