"""Shared test setup: no test touches the user's real data dir or sees a real API key."""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.ops.default_model import model_path
from tests.pg import LogBackend, scratch_database, scratch_schema

#: Directories run clean with ResourceWarnings and unraisable exceptions as errors (the leak sweeps of 2026-11-29): a
#: leak in them fails the test that made it. Once every directory is clean this moves to pyproject's filterwarnings.
STRICT_DIRS = ("agents", "bench", "fakes_selftest", "frontends", "lending", "ops", "replay", "shared", "unit")
_STRICT = (pytest.mark.filterwarnings("error::ResourceWarning"),
           pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"))


def _strict(item: pytest.Item | None) -> bool:
    tests = Path(__file__).parent
    if item is None or not item.path.is_relative_to(tests):
        return False
    parts = item.path.relative_to(tests).parts
    return bool(parts) and parts[0] in STRICT_DIRS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _strict(item):
            for mark in _STRICT:
                item.add_marker(mark, append=False)  # a test's own filterwarnings marks still come after


_last: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Before the first test of a strict directory that follows one not swept yet, collect the garbage that one left
    — outside any test and with the interpreter's own unraisable hook, so its leaks are shown as they were, not as
    errors of whichever strict test the collector would next run in (before, only a prefix of the suite's order
    could be strict)."""
    if _strict(item) and _last and not _strict(_last[0]):
        hook, sys.unraisablehook = sys.unraisablehook, sys.__unraisablehook__
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", ResourceWarning)
                gc.collect()
        finally:
            sys.unraisablehook = hook
    _last[:] = [item]
    return (yield)


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("modelyard-data")
    os.environ["MODELYARD_DATA_DIR"] = str(data)
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))  # held rows may go there (ledger/held.py)
    os.environ.pop("STATE_DIRECTORY", None)
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
