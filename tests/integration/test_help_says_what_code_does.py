"""Option help that said something the code does not do: each test runs the code and reads the help beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli import app


def option_help(command: str, option: str) -> str:
    """``command``'s help for ``option``, as --help shows it (wrapping aside)."""
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return " ".join(next(p for p in click_command.params if p.opts[0] == option).help.split())


def test_replays_current_default_is_the_usual_lookup_when_replay_has_no_config_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--current's help said its default is 'a --config given before `replay`': `modelyard --config X replay` makes
    X the candidate, and the current config is the usual lookup — here the embedded default, not X."""
    for name in ("MODELYARD_CONFIG", "MODELYARD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("models:\n  m: {provider: openai, model: m, endpoint: 'http://127.0.0.1:9/v1'}\n"
                         f"agents:\n  chat: {{primary: m}}\nlog: {{path: '{tmp_path / 'candidate.sqlite3'}'}}\n")
    out = CliRunner().invoke(app, ["--config", str(candidate), "replay"], env={"COLUMNS": "400"})
    assert out.exit_code == 1, out.output
    said = " ".join(out.output.split())
    assert "examples/default.yaml): nothing to replay yet" in said and "candidate.sqlite3" not in said, said
    assert "`modelyard --config X replay` makes X the candidate only" in option_help("replay", "--current")
    assert "when replay has its own --config" in option_help("replay", "--current")


def test_replays_window_says_utc_and_its_default_start() -> None:
    """--since read 'start of the window, e.g. 2026-03-01': a date without an offset is UTC since 2026-12-01, as the
    log and `report --month` (replay_cmd._when), and with --until alone the window starts 30 days before it."""
    said = option_help("replay", "--since")
    assert "in UTC (as the log and `report --month`) unless it carries an offset" in said
    assert said.endswith("default: 30 days before --until")


def test_reports_month_is_said_to_be_a_utc_month() -> None:
    """--month read 'YYYY-MM (default: this month)': the month is UTC's (ledger/report.month_period), the one spend
    caps count — on the evening of the 31st in New York 'this month' is already the next one."""
    assert option_help("report", "--month") == "a UTC calendar month, YYYY-MM (default: this one, to date)"


def test_plans_default_headroom_is_said_with_its_floor(tmp_path: Path) -> None:
    """--headroom read 'a quarter of RAM' below 32 GB: on a 4 GB machine that is 1 GB, but plan keeps at least 2
    (ops/plan.default_headroom)."""
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  m: {provider: openai, model: m, endpoint: 'http://127.0.0.1:9/v1'}\n"
                      f"agents:\n  chat: {{primary: m}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    out = CliRunner().invoke(app, ["plan", "--config", str(config), "--ram", "4", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["headroom_gb"] == 2
    assert option_help("plan", "--headroom").endswith("(default 8 on ≥32 GB, else a quarter of RAM, at least 2)")
