"""`modelyard route TEXT --label AGENT` (and `rate --agent`) with a mistyped agent: the nearest agent is named, as
`ask --agent` and the config's checks name it (config/names.py) — it listed the agents and left the comparing to the
reader."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli import app
from tests.agents.test_learning import write_config

runner = CliRunner()


def test_route_label_with_a_typo_names_the_closest_agent(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    result = runner.invoke(app, ["route", "sort this list", "--label", "soter", "-c", str(path)])
    assert result.exit_code != 0
    flat = " ".join(result.output.split())
    assert "'soter' is not an agent the orchestrator routes to (did you mean 'sorter'?)" in flat, flat
    # case slips too: 'Sorter' for 'sorter'
    result = runner.invoke(app, ["route", "sort this list", "--label", "Sorter", "-c", str(path)])
    assert "(did you mean 'sorter'?)" in " ".join(result.output.split()), result.output
    # nothing near: the list only
    result = runner.invoke(app, ["route", "sort this list", "--label", "zzz", "-c", str(path)])
    assert "did you mean" not in result.output and "coder, sorter" in " ".join(result.output.split())


def test_rate_agent_with_a_typo_names_the_closest_agent(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    result = runner.invoke(app, ["rate", "abc", "bad", "--agent", "codr", "-c", str(path)])
    assert result.exit_code != 0
    assert "(did you mean 'coder'?)" in " ".join(result.output.split()), result.output
