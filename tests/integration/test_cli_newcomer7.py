"""A newcomer's first hour, round 7: what the commands after the first `ask` say — backup, report, eval-routing.

Each case is a step of the README followed as written, or what a user of a peer tool types there; each is run through
the CLI and says the file, the line or the value to write, not a wrong cause or a setting the reader never wrote.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml
from tests.unit.test_ledger import record
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.ledger import LogWriter

runner = CliRunner()


def _logged(tmp_path: Path, extra: dict | None = None, requests: int = 3) -> Path:
    """A config whose log (``log.sqlite3`` beside it) holds ``requests`` requests."""
    log = tmp_path / "log.sqlite3"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"log": {"path": str(log), **(extra or {})},
                                      "models": {"local": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
                                      "agents": {"chat": {"primary": "local"}}}))
    writer = LogWriter(log)
    for i in range(requests):
        writer.submit(record(i))
    assert writer.flush(10)
    writer.close()
    return config


def test_backup_into_a_folder_writes_a_dated_file_there(tmp_path: Path) -> None:
    """`modelyard backup ~/backups` — as `cp log ~/backups/` and a nightly cron line write it — said "~/backups
    exists: name a new file (a backup never overwrites one)": the folder was taken for the file. It goes into the
    folder now, under a dated name (two runs, two files), and the restore names the log's own file — it said "copy
    this file to log.path", a setting the default config never writes."""
    config = _logged(tmp_path)
    folder = tmp_path / "backups"
    folder.mkdir()
    out = runner.invoke(app, ["backup", str(folder), "--config", str(config)])
    text = " ".join(out.output.split())
    assert out.exit_code == 0, text
    made = list(folder.glob("routing-*.sqlite3"))
    assert len(made) == 1, text
    assert made[0].name[len("routing-"):-len(".sqlite3")].endswith("Z"), made  # UTC, sorts by date
    assert f"routing log copied to {made[0]}: 3 requests" in text, text
    assert f"then copy this file to {tmp_path / 'log.sqlite3'})" in text and "log.path" not in text, text
    with sqlite3.connect(made[0]) as copy:
        assert copy.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 3


def test_backup_with_log_url_says_the_copy_is_this_hosts_spool(tmp_path: Path) -> None:
    """With `log.url` the requests are in PostgreSQL and the SQLite file is this host's spool; `backup` said
    "routing log copied to …: N requests" and nothing more — a team member took that file for the team's log, to
    find at the restore that it held this host's rows only. It says so, and names pg_dump, the password never shown."""
    config = _logged(tmp_path, {"url": "postgresql://modelyard:s3cret@127.0.0.1:5432/modelyard"})
    out = runner.invoke(app, ["backup", str(tmp_path / "b.sqlite3"), "--config", str(config)])
    text = " ".join(out.output.split())
    assert out.exit_code == 0, text
    assert "this copy is this host's spool only — back the shared log up with pg_dump" in text, text
    assert "s3cret" not in text and "postgresql://modelyard:***@127.0.0.1:5432/modelyard" in text, text


def test_backup_to_a_folder_not_made_yet_says_so(tmp_path: Path) -> None:
    """`modelyard backup nightly/` (a folder meant, not there yet) wrote a file named `nightly` — the path lost its
    slash on the way in — where `cp log nightly/` says "Not a directory". It says the folder is missing, writes
    nothing."""
    config = _logged(tmp_path)
    meant = tmp_path / "nightly"
    out = runner.invoke(app, ["backup", f"{meant}/", "--config", str(config)])
    text = " ".join(out.output.split())
    assert out.exit_code == 1, text
    assert f"{meant}/: no such folder — create it first (mkdir -p {meant}/), or name a file" in text, text
    assert not meant.exists()


def test_init_over_an_existing_config_offers_to_write_beside_it(tmp_path: Path) -> None:
    """Re-running `modelyard init --detect` after pulling a model said only "… exists; use --force to overwrite" —
    the one way it offered loses every edit made since. It names what --force costs and the command that writes the
    new config beside the old one to compare, with the same --detect and --endpoint; nothing is written."""
    mine = tmp_path / "config.yaml"
    mine.write_text("# my edits\n")
    out = runner.invoke(app, ["init", str(mine), "--detect", "--endpoint", "http://127.0.0.1:9"])
    text = " ".join(out.output.split())
    assert out.exit_code == 2, text
    assert (f"{mine} exists; --force overwrites it, your edits with it — or write the new one beside it and compare: "
            f"modelyard init {tmp_path / 'config.new.yaml'} --detect --endpoint http://127.0.0.1:9") in text, text
    assert mine.read_text() == "# my edits\n"
