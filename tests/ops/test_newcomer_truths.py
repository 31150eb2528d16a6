"""What a newcomer sees after a few real requests, checked against what happened (helper-75's walk through `ask`,
`log`, `stats`, `plan` on a log made with the embedded model and fakes):

- a billed model without a price answered: the route line, `log` and `stats` showed "$0.0000" — free — where
  `report` says "price unknown" (ledger/cost.py: one rule for all of them);
- a model whose server gave no size: `plan` showed its KV cache as "0.0 GB" and its memory as "~0.0 GB" while
  its source said "unknown"; a small KV cache (the embedded model's 0.025 GB) read "0.0 GB"."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.fakes import AnthropicServer
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()
KEY = "sk-ant-newcomer-0123456789abcdef"


def test_an_unpriced_billed_answer_is_not_shown_as_free(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWCOMER_ANTHROPIC_KEY", KEY)
    with AnthropicServer(api_key=KEY, reply_text="a short poem about rain") as claude:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "log": {"path": str(tmp_path / "log.sqlite3")},
            "models": {"haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": claude.url,
                                 "api_key_env": "NEWCOMER_ANTHROPIC_KEY"}},
            "agents": {"writer": {"primary": "haiku"}}}))
        asked = runner.invoke(app, ["ask", "--agent", "writer", "a poem", "-c", str(config)], terminal_width=200)
    assert asked.exit_code == 0, asked.output
    route = asked.output.strip().splitlines()[-1]
    assert route.startswith("writer → haiku") and "price unknown" in route and "$0.0000" not in route, route
    log = runner.invoke(app, ["log", "-c", str(config)], terminal_width=200).output
    row = next(line for line in log.splitlines() if "writer" in line)
    assert "price unknown" in row and "$0.0000" not in row, log
    stats = runner.invoke(app, ["stats", "-c", str(config)], terminal_width=200).output
    rows = [line for line in stats.splitlines() if line.startswith(("writer", "haiku"))]
    assert len(rows) == 2 and all("price unknown" in r and "$0.0000" not in r for r in rows), stats


def test_plan_says_unknown_sizes_as_unknown(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"gone": {"provider": "ollama", "model": "q:7b", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"a": {"primary": "gone"}}}))
    out = runner.invoke(app, ["plan", "-c", str(config), "--ram", "16"], terminal_width=200)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "gone" in line)
    assert "0.0 GB" not in row and "?" in row, out.output
    total = next(line for line in out.output.splitlines() if "Total" in line)
    assert "+ ?" in total, out.output
