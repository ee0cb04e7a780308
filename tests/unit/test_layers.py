"""The domain imports nothing but the standard library (import-linter checks the adapter rules)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "domain"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_only_stdlib_and_itself() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, "no domain modules found"
    allowed = set(sys.stdlib_module_names) | {"domain", "__future__"}
    offenders = {
        str(f.relative_to(DOMAIN)): sorted(_imported_roots(f) - allowed)
        for f in files
        if _imported_roots(f) - allowed
    }
    assert offenders == {}
