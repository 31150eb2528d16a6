"""The commands around the machine's daemon: whether serve runs the bot, what install-service says."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.cli.serve_cmd import telegram_token_for
from modelyard.config import load_config

BASE = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1"}}, "agents": {"a": {"primary": "m"}}}


def _config(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "log": {"path": str(tmp_path / "log.db")}, **extra}))
    return path


def test_serve_runs_the_bot_only_when_the_config_has_a_telegram_section(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_BOT", "123:abc")
    without = load_config(_config(tmp_path))
    assert telegram_token_for(without, None) is None
    with_bot = load_config(_config(tmp_path, telegram={"token_env": "MY_BOT", "allowed_users": [1]}))
    assert telegram_token_for(with_bot, None) == "123:abc"
    assert telegram_token_for(with_bot, False) is None
    monkeypatch.delenv("MY_BOT")
    assert telegram_token_for(with_bot, None) is None  # configured but no token: the gateway still starts
    with pytest.raises(typer.Exit):
        telegram_token_for(with_bot, True)  # asked for explicitly: a clear error instead


def test_install_service_says_the_one_service_runs_the_bot(tmp_path: Path) -> None:
    config = _config(tmp_path, telegram={"token_env": "MY_BOT", "allowed_users": [1]})
    out = CliRunner().invoke(app, ["install-service", "--platform", "linux", "--dir", str(tmp_path / "units"),
                                   "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert "runs the bot too once MY_BOT is in" in out.output
    assert "share the service's limits" in out.output
    unit = (tmp_path / "units" / "modelyard.service").read_text()
    assert "Telegram bot" in unit and " serve --config " in unit


def test_models_says_where_the_limits_live_without_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MODELYARD_STATE", raising=False)
    out = CliRunner().invoke(app, ["models", "--no-reach", "--config", str(_config(tmp_path))])
    assert out.exit_code == 0, out.output
    assert "limits of ask, chat, telegram: this process only (no `modelyard serve` running" in out.output
