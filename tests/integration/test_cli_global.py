"""Global options: `modelyard --config X CMD …` works like `modelyard CMD --config X …`; `--version`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from tests.fakes import OllamaServer
from tests.integration.test_cli import CONFIG
from typer.testing import CliRunner

from modelyard import __version__
from modelyard.cli import app


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_config_before_the_command_is_the_same_as_after(tmp_path: Path) -> None:
    with OllamaServer(models=["qwen3.5:latest"], reply_text="Local answer.") as server:
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG.format(url=server.url, log=tmp_path / "log.sqlite3"))
        before = modelyard("--config", str(config), "ask", "--agent", "writer", "hi")
        assert before.returncode == 0, before.stderr
        assert before.stdout.strip() == "Local answer."
        assert "writer → local (after cloud: missing_credentials)" in before.stderr
        short = modelyard("-c", str(config), "log", "--json")
        assert short.returncode == 0 and '"agent": "writer"' in short.stdout
        # a subcommand group's command inherits it too
        assert "wrong.yaml" in modelyard("--config", str(tmp_path / "wrong.yaml"), "routing", "learn").stderr


def test_the_commands_own_config_wins(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG.format(url="http://127.0.0.1:9", log=tmp_path / "log.sqlite3"))
    runner = CliRunner()
    out = runner.invoke(app, ["--config", str(tmp_path / "missing.yaml"), "models", "--no-reach", "--config",
                              str(good)])
    assert out.exit_code == 0, out.output
    # one of the two is being ignored: said, naming both (it was silent)
    said = modelyard("--config", str(tmp_path / "missing.yaml"), "models", "--no-reach", "--config", str(good))
    assert said.returncode == 0, said.stderr
    note = " ".join(said.stderr.split())
    assert "two configs given" in note and "missing.yaml" in note and f"using {good}" in note
    same = modelyard("--config", str(good), "models", "--no-reach", "--config", str(good))
    assert same.returncode == 0 and "two configs given" not in same.stderr
    wrong = runner.invoke(app, ["--config", str(tmp_path / "missing.yaml"), "models"])
    assert wrong.exit_code == 2 and "missing.yaml" in wrong.output


def test_version() -> None:
    out = modelyard("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"modelyard {__version__}"


def test_init_writes_where_the_other_commands_will_read(tmp_path: Path, monkeypatch) -> None:
    """`init` with $MODELYARD_CONFIG or --config set wrote the user config file, which no command then read
    (they read the variable's or the option's file and said 'file not found')."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MODELYARD_CONFIG", str(tmp_path / "env.yaml"))
    runner = CliRunner()
    by_env = runner.invoke(app, ["init"])
    assert by_env.exit_code == 0, by_env.output
    assert (tmp_path / "env.yaml").is_file() and not (tmp_path / "xdg").exists()
    assert "next: edit it, then `modelyard models`" in by_env.output
    for args in (["--config", str(tmp_path / "global.yaml"), "init"], ["init", "-c", str(tmp_path / "own.yaml")]):
        assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "global.yaml").is_file() and (tmp_path / "own.yaml").is_file()
    # a path of one's own is written there, and the hint says how to read it
    mine = runner.invoke(app, ["init", str(tmp_path / "mine.yaml")])
    assert f"modelyard --config {tmp_path / 'mine.yaml'} models" in mine.output


def test_the_command_list_wraps_summaries_to_the_terminal_not_the_source() -> None:
    """`modelyard --help` kept each docstring's line breaks: 'missing credentials; and where' ended a line
    with the rest of the sentence on the next, however wide the terminal."""
    env = {**os.environ, "COLUMNS": "200"}
    for args, sentence in ((["--help"], "missing on its server, unavailable (a key not set, the GGUF missing)"),
                           (["routing", "--help"], "or waiting for `routing learn`")):
        out = subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, timeout=60,
                             env=env)
        assert out.returncode == 0 and sentence in out.stdout, out.stdout


def test_help_labels_say_what_to_type_and_nothing_after_a_flag() -> None:
    """typer 0.29 labelled every option by its Python type: `--json <bool>` (a flag: nothing to type), `--host
    <str>`, `--port <int range>`, `PROMPT <list[str]>`. Now TEXT, INTEGER, PATH, choices, and no label on a flag."""
    env = {**os.environ, "COLUMNS": "120"}
    seen = {}
    for command in ("serve", "ask", "log", "models", "replay", "install-service"):
        out = subprocess.run([sys.executable, "-m", "modelyard", command, "--help"], capture_output=True, text=True,
                             timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        assert not re.search(r"<(bool|str|int|float|path|list\[)", out.stdout), out.stdout
        seen[command] = {line.split()[1]: line for line in out.stdout.splitlines() if line.startswith("│ -")}
    assert "INTEGER [0<=x<=65535]" in seen["serve"]["--port"] and "TEXT" in seen["serve"]["--host"]
    for flag, command in (("--json", "ask"), ("--reach", "models"), ("--dry-run", "install-service"),
                          ("--access-log", "serve")):
        assert not re.search(r"\b(BOOLEAN|TEXT)\b", seen[command][flag]), seen[command][flag]
    assert "PATH" in seen["ask"]["--config"]


def test_models_is_readable_at_80_columns(tmp_path: Path) -> None:
    """At 80 columns `models` squeezed eight columns into 'llama3.…', 'availab…', 'resear…' over a dozen lines a
    model. Now whole columns by priority, one line per model, and each state's reason whole under the table."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {
            "llama3.2-3b-instruct": {"provider": "ollama", "model": "llama3.2:3b", "endpoint": "http://127.0.0.1:9"},
            "claude-haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "api_key_env": "NO_KEY_H35",
                             "price": {"input": 1, "output": 5}, "spend_cap": {"usd": 2, "per": "day"}}},
        "agents": {name: {"primary": "claude-haiku" if name in ("research", "writer") else "llama3.2-3b-instruct",
                          "fallbacks": ["llama3.2-3b-instruct"] if name in ("research", "writer") else []}
                   for name in ("chat", "orchestrator", "engineer", "research", "writer", "utility")}}))
    env = {**{k: v for k, v in os.environ.items() if k not in ("MODELYARD_STATE", "NO_KEY_H35")}, "COLUMNS": "80",
           "MODELYARD_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "modelyard", "models", "--no-reach", "--config", str(config)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), out.stdout
    assert "…" not in out.stdout, out.stdout
    rows = {line.split()[0]: line for line in lines if line.split()}
    assert rows["llama3.2-3b-instruct"].split()[1:3] == ["available", "1"], out.stdout
    assert "chat, engineer," in rows["llama3.2-3b-instruct"] and "fallback for research," in out.stdout
    assert "claude-haiku: unavailable: environment variable NO_KEY_H35 is not set" in out.stdout
    assert "claude-haiku: spend cap $2/day, $0.00 spent this day (UTC)" in out.stdout
