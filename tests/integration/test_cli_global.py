"""Global options: `modelyard --config X CMD …` works like `modelyard CMD --config X …`; `--version`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    wrong = runner.invoke(app, ["--config", str(tmp_path / "missing.yaml"), "models"])
    assert wrong.exit_code == 2 and "missing.yaml" in wrong.output


def test_version() -> None:
    out = modelyard("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"modelyard {__version__}"
