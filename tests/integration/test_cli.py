"""The `modelyard` command end to end, against local protocol servers (fast) — the real model is in
test_real_model.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import Fault, OllamaServer
from tests.pg import LogBackend

CONFIG = """\
default_agent: chat
models:
  local:
    provider: ollama
    model: qwen3.5:latest
    endpoint: {url}
    max_concurrent: 2
  cloud:
    provider: anthropic
    api_key_env: MODELYARD_TEST_NO_SUCH_KEY
    price: {{input: 1.0, output: 5.0}}
agents:
  writer:
    description: Drafts prose.
    primary: cloud
    fallbacks: [local]
  chat:
    primary: local
defaults:
  retries: {{attempts: 0}}
  timeouts: {{first_token: 1}}
log:
  path: {log}
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, OllamaServer]]:
    with OllamaServer(models=["qwen3.5:latest"], reply_text="Local answer.") as server:
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG.format(url=server.url, log=tmp_path / "log.sqlite3"))
        yield config, server


@pytest.fixture
def setup_any_log(tmp_path: Path, log_backend: LogBackend) -> Iterator[tuple[Path, OllamaServer]]:
    """The same, with the log on each backend (with PostgreSQL: every command is a separate process,
    so `log` sees what `ask` forwarded before it exited)."""
    with OllamaServer(models=["qwen3.5:latest"], reply_text="Local answer.") as server:
        config = tmp_path / "config.yaml"
        url = f"  url: {log_backend.url}\n" if log_backend.url else ""
        config.write_text(CONFIG.format(url=server.url, log=log_backend.path) + url)
        yield config, server


def run(*args: str, config: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True,
                          timeout=60, env=env, input=stdin)


def test_ask_streams_answer_then_route(setup: tuple[Path, OllamaServer]) -> None:
    config, _ = setup
    result = run("ask", "--agent", "writer", "Draft a line", config=config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Local answer."
    route = result.stderr.strip().splitlines()[-1]
    assert route.startswith("writer → local (after cloud: missing_credentials)")
    assert "TTFT" in route and "$0.0000" in route and " id " in route


def test_log_stats_models_rate(setup_any_log: tuple[Path, OllamaServer]) -> None:
    config, _ = setup_any_log
    ids = [json.loads(run("ask", "--json", "hello", config=config).stdout)["id"] for _ in range(3)]
    log = run("log", "--attempts", config=config)
    assert all(i in log.stdout for i in ids) and "chat" in log.stdout
    stats = run("stats", config=config)
    assert stats.returncode == 0 and "by agent" in stats.stdout and "by model" in stats.stdout
    assert "3/3" in stats.stdout  # all served locally (3 of 3: a count, not "100%")
    models = run("models", config=config)
    assert "MODELYARD_TEST_NO_SUCH_KEY" in models.stdout and "available" in models.stdout
    assert run("rate", ids[0], "bad", config=config).returncode == 0
    assert run("rate", "zzzz", "good", config=config).returncode == 2
    assert run("rate", ids[0], "meh", config=config).returncode == 2


def test_exhausted_chain_exits_1_listing_attempts(setup: tuple[Path, OllamaServer]) -> None:
    config, server = setup
    server.set_default(Fault.status(500))
    result = run("ask", "--agent", "writer", "hello", config=config)
    assert result.returncode == 1
    assert "cloud: skipped (missing_credentials" in result.stderr
    assert "local: fallback (server_error" in result.stderr
    assert "Traceback" not in result.stderr
    assert "turn: no model could answer" not in result.stderr  # the bot's log line, printed bare, said it twice


def test_bad_input(setup: tuple[Path, OllamaServer]) -> None:
    config, _ = setup
    assert run("ask", "--agent", "nobody", "hi", config=config).returncode == 2
    # a model's name where an agent goes (`models` lists them first) says so, and who uses it
    model = run("ask", "--agent", "local", "hi", config=config)
    assert model.returncode == 2 and "'local' is a model, not an agent; writer, chat use it" in model.stderr
    assert run("ask", "   ", config=config).returncode == 2
    # several words unquoted are the prompt (they were 'unexpected extra argument(s)')
    words = run("ask", "--agent", "chat", "what", "is", "2+2", "--json", config=config)
    assert words.returncode == 0 and json.loads(words.stdout)["answer"] == "Local answer.", words.stderr
    piped = run("ask", "-", config=config, stdin="from stdin")
    assert piped.returncode == 0 and "Local answer." in piped.stdout


def test_a_message_too_long_for_every_model_says_why_and_what_to_do(tmp_path: Path) -> None:
    """It said only 'error: refused: message too long' (the route's tag), not the sizes and the way out."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9", log=tmp_path / "log.sqlite3")
                      .replace("max_concurrent: 2", "max_concurrent: 2\n    context: 512"))
    result = run("ask", "--agent", "chat", "-", config=config, stdin="lorem ipsum dolor " * 2000)
    assert result.returncode == 1
    assert "too long for agent 'chat'" in result.stderr and "shorten it" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    result = subprocess.run([sys.executable, "-m", "modelyard", "init", str(target), "--example", "reference-mac64"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and target.exists()
    again = subprocess.run([sys.executable, "-m", "modelyard", "init", str(target)], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr
    models = subprocess.run([sys.executable, "-m", "modelyard", "models", "--config", str(target)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path)})
    assert models.returncode == 3 and "gemma4-26b" in models.stdout  # no server of it runs here: none can answer
