"""structlog and dependency-injector, imported without the optional integrations they look for
at import time and Taskhub never uses: each would cost every process a few MiB of memory.

- structlog looks for rich (its console renderer's default tracebacks): `app.logs` names its
  own formatters (plain tracebacks), so rich would never run.
- dependency-injector looks for pydantic-settings and pydantic (`Configuration.from_pydantic`),
  and for starlette, werkzeug, flask, fastapi and fast-depends (wiring their request objects
  and markers): the container only uses providers.

The packages are hidden from these two imports only; they stay importable afterwards (the MCP
SDK loads pydantic and starlette on a worker's first MCP request). A package already imported
is not hidden: the integrations are then found, as before.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

STRUCTLOG_EXTRAS = ("rich",)
DEPENDENCY_INJECTOR_EXTRAS = (
    "pydantic",
    "pydantic_settings",
    "starlette",
    "werkzeug",
    "flask",
    "fastapi",
    "fast_depends",
)


class _Hidden(importlib.abc.MetaPathFinder):
    """Answers ModuleNotFoundError for the given top-level packages and their modules."""

    def __init__(self, packages: Sequence[str]) -> None:
        self._packages = frozenset(packages)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002 (the finder protocol's signature)
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self._packages:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextmanager
def hidden(packages: Sequence[str]) -> Iterator[None]:
    """Within the block, importing one of `packages` (not imported yet) fails as if it were not
    installed."""
    finder = _Hidden(packages)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_lean() -> None:
    """Import structlog and dependency-injector (a no-op once they are)."""
    with hidden(STRUCTLOG_EXTRAS):
        import structlog  # noqa: F401
    with hidden(DEPENDENCY_INJECTOR_EXTRAS):
        import dependency_injector.containers
        import dependency_injector.providers
        import dependency_injector.wiring  # noqa: F401
