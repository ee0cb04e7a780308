"""Fixtures for the identity unit tests."""

import pytest

from tests.unit.identity.support import Identity


@pytest.fixture
def identity() -> Identity:
    return Identity()
