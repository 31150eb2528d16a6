"""Shared setup for agent tests: the default config's topology and examples, served by fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import Config, load_config
from modelyard.paths import embedded_default_config
from modelyard.runtime import Runtime, open_runtime
from tests.fakes import OpenAIServer

MODEL_ID = "qwen2.5-fake"  # a Qwen-looking id declared to think, so the provider sends the /no_think switch


def default_data() -> dict[str, Any]:
    return yaml.safe_load(embedded_default_config().read_text())


def fake_config(url: str, tmp_path: Path, *, agents: dict[str, dict[str, Any]] | None = None,
                **overrides: Any) -> Config:
    """The embedded default (agents, examples, orchestration) with every model replaced by the fake."""
    data = default_data()
    data["models"] = {
        "fake": {"provider": "openai", "endpoint": url, "model": MODEL_ID, "context": 4096,
                 "capabilities": ["thinking"]},
        "backup": {"provider": "openai", "endpoint": url, "model": "backup-model"},
    }
    for cfg in data["agents"].values():
        cfg["primary"], cfg["fallbacks"] = "fake", []
    for name, changes in (agents or {}).items():
        data["agents"].setdefault(name, {}).update(changes)
    data["log"] = {"path": str(tmp_path / "log.sqlite3")}
    data["defaults"]["retries"] = {"attempts": 0}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return Config.model_validate(data)


def agent_of(body: dict[str, Any]) -> str:
    """Which agent a request came from, read from the system prompt the router adds."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    return system.removeprefix("You are the ").split(" ", 1)[0] if system.startswith("You are the ") else "?"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text=lambda body: f"<{agent_of(body)}> done") as fake:
        yield fake


@pytest.fixture
async def runtime_for(tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[Runtime] = []

    def make(config: Config) -> Runtime:
        runtime = open_runtime(tmp_path / "config.yaml", config=config)
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        await runtime.aclose()


@pytest.fixture(scope="module")
def default_orchestrator() -> Orchestrator:
    """The default config's orchestrator, built once per module (fitting its classifier takes a while)."""
    made = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert made is not None
    return made
