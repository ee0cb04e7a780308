"""`N/second|minute|hour` -> RateLimitPolicy, and a clear ValueError for anything else."""

from __future__ import annotations

import pytest

from domain.ports import RateLimitPolicy
from domain.rate_limits import gcra_parameters, parse_policy


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [
        ("600/minute", 600, 60),
        ("10/minute", 10, 60),
        ("1/second", 1, 1),
        ("5000/hour", 5000, 3600),
        (" 20 / Minute ", 20, 60),
    ],
)
def test_valid_policies_parse(text: str, limit: int, window: int) -> None:
    assert parse_policy("default", text) == RateLimitPolicy("default", limit, window)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "600",
        "/minute",
        "600/",
        "600/min",
        "600/minutes",
        "600/day",
        "0/minute",
        "-1/minute",
        "1.5/minute",
        "1_000/minute",
        "ten/minute",
        "600/minute/extra",
        "600 per minute",
        "٣/minute",  # a non-ASCII digit
    ],
)
def test_invalid_policies_name_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"N/second, N/minute or N/hour") as caught:
        parse_policy("login", text)
    assert "'login'" in str(caught.value)
    assert repr(text) in str(caught.value)


def test_interval_rounds_up_so_the_rate_never_exceeds_the_policy() -> None:
    params = gcra_parameters(RateLimitPolicy("p", 7, 60))
    assert params.interval_us == 8_571_429
    assert params.capacity_us == 7 * 8_571_429
    assert params.capacity_us >= 60_000_000
