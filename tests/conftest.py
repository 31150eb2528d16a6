"""Shared test setup: no test touches the user's real data dir or sees a real API key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.ops.default_model import model_path
from tests.pg import LogBackend, scratch_database, scratch_schema

#: Directories run clean with ResourceWarnings and unraisable exceptions as errors (the leak sweep of 2026-11-29): a
#: leak in them fails the test that made it. Per directory, and only a prefix of the suite's order (agents, bench,
#: fakes_selftest, frontends come first), because a leak of a directory not yet swept is reported in whichever later
#: test the collector happens to run in. Once every directory is clean this moves to pyproject's filterwarnings.
STRICT_DIRS = ("agents", "bench", "fakes_selftest", "frontends")
_STRICT = (pytest.mark.filterwarnings("error::ResourceWarning"),
           pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and parts[0] in STRICT_DIRS:
            for mark in _STRICT:
                item.add_marker(mark, append=False)  # a test's own filterwarnings marks still come after


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("modelyard-data")
    os.environ["MODELYARD_DATA_DIR"] = str(data)
    os.environ.pop("MODELYARD_CONFIG", None)
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN"):
        os.environ.pop(key, None)


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real embedded model; scripts/bootstrap.sh fetches it before the suite runs."""
    path = model_path()
    if not path.is_file():
        pytest.fail(f"the default model is missing at {path}: run scripts/bootstrap.sh first")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test run's own on the shared PostgreSQL (fails, never skips, if it is absent)."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh schema for one test: a libpq URL whose connections see only it."""
    with scratch_schema(pg_database) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def log_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogBackend]:
    """The routing log on each backend: the same test runs against SQLite and against PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    backend = LogBackend(request.param, tmp_path / "log.sqlite3", url)
    yield backend
    backend.close()
