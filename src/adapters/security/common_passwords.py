"""The common-password list sign-up refuses: `common_passwords.txt` beside this module.

The file holds the 8,354 entries of at least 8 characters (shorter ones fail the length rule
anyway) from the 20,000 most common passwords that Django ships with its
CommonPasswordValidator (django/contrib/auth/common-passwords.txt.gz, Django 5.2.19), in lower
case, one per line. About 80 KB on disk and 1.5 MB in memory, loaded once per process.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def common_passwords() -> frozenset[str]:
    """The list as a set of lower-case passwords."""
    text = files(__package__ or __name__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())
