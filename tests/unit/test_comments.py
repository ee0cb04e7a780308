"""Comments and docstrings in shipped code stand on their own.

They must not send readers to documents outside the repository or to issue numbers, and must not
carry benchmark figures (those go to bench/README.md and commit messages, where they are dated).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "migrations")

FORBIDDEN = {
    "a design document outside the repository": re.compile(
        r"\b(PITFALLS|ARCHITECTURE|TOOLING|DEVELOPERS)\b|\bAPI\.md\b|shared/design"
    ),
    "an issue number": re.compile(r"\bissues?\s+#?\d+\b|(?<![\w/&])#\d{2,}\b", re.IGNORECASE),
    "a benchmark figure": re.compile(
        r"\d\s*(req/s|rps)\b|\d\s*µs\b|\bp(50|90|99)\b\D{0,12}\d"
        r"|\d\s*%\s+of\s+(a\s+|the\s+)?(worker|samples|cpu)|\d(\.\d+)?\s*x\s+(faster|slower)",
        re.IGNORECASE,
    ),
}


def _docstrings(source: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None and node.body:
                found.append((node.body[0].lineno, doc))
    return found


def _comments(source: str) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]


def offences(source: str) -> list[tuple[int, str, str]]:
    """(line, what, text) for every comment or docstring line that breaks the rule."""
    found: list[tuple[int, str, str]] = []
    for first_line, text in _comments(source) + _docstrings(source):
        for offset, line in enumerate(text.splitlines()):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    found.append((first_line + offset, what, line.strip()))
    return found


@pytest.mark.parametrize(
    "text",
    [
        "# Several workers share metrics (PITFALLS 5).",
        "# One transaction per use case (ARCHITECTURE.md rule 5).",
        '"""The wire format (API.md is the contract)."""',
        "# Added for issue 7.",
        "# Works around litestar #4747.",
        "# This path serves 5016 req/s.",
        "# Building a Task costs 2.45 µs.",
        "# The gate went from 17.8 % of a worker to 12 %.",
        '"""Paused a worker; the p99 was ~110 ms."""',
    ],
)
def test_the_check_catches_each_kind(text: str) -> None:
    assert offences(text + "\n")


@pytest.mark.parametrize(
    "text",
    [
        "# A 64 KiB cap on request heads; 431 beyond it.",
        "# Retry after 5 s, then 5 min.",
        '"""Keys are HMAC-SHA256 of the token (RFC 9457 problems)."""',
        "# The statement timeout bounds every query (milliseconds).",
    ],
)
def test_ordinary_comments_pass(text: str) -> None:
    assert offences(text + "\n") == []


def test_shipped_code_has_no_outside_references_or_figures() -> None:
    files = [p for top in SCANNED for p in sorted((ROOT / top).rglob("*.py"))]
    assert files, "nothing scanned"
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}: {text}"
        for path in files
        for line, what, text in offences(path.read_text())
    ]
    assert found == []
