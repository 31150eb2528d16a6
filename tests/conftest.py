"""Shared test setup: no test touches the user's real data dir or sees a real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.ops.default_model import model_path


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
