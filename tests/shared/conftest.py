"""Fixtures for the shared-state tests: a unique prefix on the real Redis, deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.shared.redis_kit import REDIS_URL, delete_prefix, new_prefix, require_redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_redis()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    p = new_prefix()
    yield p
    delete_prefix(p, redis_url)
