"""What a newcomer gets wrong, said plainly: one line naming the file and what to do, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.test_cli import CONFIG
from typer.testing import CliRunner

from modelyard.cli import app

#: every command that reads this host's log file, with the arguments it needs to get that far
READERS = [["log"], ["stats"], ["report"], ["rate", "abc", "good"], ["models", "--no-reach"], ["routing", "labels"],
           ["check"], ["probe", "--only", "reachable"]]


@pytest.mark.parametrize("kind", ["not a database", "a directory"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_log_path_that_is_not_a_log_is_named(tmp_path: Path, kind: str, command: list[str]) -> None:
    """`log.path` naming a text file or a directory made log/stats/report/rate/models/check/probe end in
    sqlite3's traceback ('file is not a database', 'unable to open database file'); ask and serve said it."""
    log = tmp_path / "log.sqlite3"
    if kind == "a directory":
        log.mkdir()
    else:
        log.write_text("not a database\n")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9", log=log))
    out = CliRunner().invoke(app, ["--config", str(config), *command])
    assert isinstance(out.exception, SystemExit), out.exception  # not sqlite3's error
    assert out.exit_code == 1, out.output
    assert f"routing log {log}: cannot be opened" in out.output and "check log.path" in out.output
