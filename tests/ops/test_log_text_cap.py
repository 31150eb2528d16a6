"""The routing log keeps each text (the last user message, the answer, its thinking) up to ``log.max_text_chars``
characters and says what it cut; the token counts stay whole. A coding agent's prompt with a pasted file made one
row megabytes — uncapped — and `log`, `report`, `replay` and the retention's size estimate read them all."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml
from tests.agents.conftest import default_data
from tests.fakes import OpenAIServer
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()
PASTED = "def f(x):\n    return x\n" * 4000  # 92,000 characters: a file pasted into the question
ANSWER = "answer " * 5000  # 35,000 characters


def write_config(tmp_path: Path, url: str, log: dict) -> Path:
    data = default_data()
    data["models"] = {"fake": {"provider": "openai", "endpoint": url, "model": "fake"}}
    for cfg in data["agents"].values():
        cfg["primary"], cfg["fallbacks"] = "fake", []
    data["log"] = {"path": str(tmp_path / "log.sqlite3"), **log}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rows(tmp_path: Path) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        return conn.execute("SELECT prompt, response, tokens_in, tokens_out FROM requests").fetchall()
    finally:
        conn.close()


def test_long_texts_are_cut_at_the_cap_and_say_so(tmp_path: Path) -> None:
    with OpenAIServer(reply_text=ANSWER) as fake:
        config = write_config(tmp_path, fake.url, {})
        result = runner.invoke(app, ["ask", "--agent", "engineer", PASTED, "-c", str(config)])
    assert result.exit_code == 0, result.output
    [(prompt, response, tokens_in, tokens_out)] = rows(tmp_path)
    # was 92,000 and 35,000 characters: the default cap is 16,000 of each, and what was cut is said
    assert prompt.startswith(PASTED[:16_000]) and len(prompt) < 16_200
    assert f"[… cut: {len(PASTED) - 16_000:,} more characters not kept (log.max_text_chars: 16,000)]" in prompt
    assert response.startswith(ANSWER[:16_000]) and "more characters not kept" in response
    assert tokens_in > 16_000 // 4 and tokens_out > 4000  # counted on the whole texts, not on what is kept

    # what reads the stored texts still works on them
    for command in (["log", "-c", str(config)], ["report", "-c", str(config), "--json"],
                    ["stats", "-c", str(config)]):
        out = runner.invoke(app, command, terminal_width=200)
        assert out.exit_code == 0, (command, out.output)
    assert json.loads(runner.invoke(app, ["report", "-c", str(config), "--json"]).stdout)["totals"]["requests"] == 1


def test_the_cap_is_configurable_and_none_keeps_everything(tmp_path: Path) -> None:
    with OpenAIServer(reply_text="short") as fake:
        config = write_config(tmp_path, fake.url, {"max_text_chars": None})
        assert runner.invoke(app, ["ask", "--agent", "engineer", PASTED, "-c", str(config)]).exit_code == 0
        [(prompt, *_)] = rows(tmp_path)
        assert prompt == PASTED.strip() or prompt == PASTED
        config = write_config(tmp_path, fake.url, {"max_text_chars": 500})
        assert runner.invoke(app, ["ask", "--agent", "engineer", PASTED, "-c", str(config)]).exit_code == 0
    cut = [p for p, *_ in rows(tmp_path) if len(p) < 1000]
    assert len(cut) == 1 and "(log.max_text_chars: 500)" in cut[0], cut
