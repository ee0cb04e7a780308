"""PostgreSQL: many rows as one parameter per column, for a one-statement INSERT or UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, func


def unnested(prefix: str, names: Sequence[str], *, numbered: bool = False) -> Any:
    """Rows from one text array parameter per column (`<prefix><name>`), one element per row;
    with `numbered`, also `n`, each row's place in the arrays (for ORDER BY)."""
    arrays = [bindparam(f"{prefix}{name}", type_=ARRAY(Text())) for name in names]
    ordinality = {"with_ordinality": "n"} if numbered else {}
    return func.unnest(*arrays).table_valued(*names, **ordinality).render_derived()
