"""``modelyard check`` names every file set aside beside the routing log — damaged, orphaned, replaced — with what it
holds and the command that gets its rows back; the command it prints, run in a shell, does.

The files are made the way the ledger makes them: a writer killed then its log deleted (``rm log.sqlite3`` alone,
tests/reliability/test_ledger_hunt40.py), the shrink recipe's ``mv`` over a running writer's log
(tests/reliability/test_ledger_hunt38.py). Before, ``check`` listed only ``.damaged-`` files: the orphaned and replaced
ones, said once as an ERROR in a process that may be long gone, were nowhere (their 20 and 120 requests not in ``log``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.reliability.test_ledger_hunt36 import SRC
from tests.reliability.test_ledger_hunt38 import _shrunk_and_moved_over
from tests.reliability.test_ledger_hunt40 import _aside, _killed_then_deleted
from tests.unit.test_log_writer_faults import record, rows

from modelyard.ledger import LogWriter


def _check(tmp_path: Path, log: Path) -> list[dict[str, str]]:
    """``modelyard check --json`` on a config whose log is ``log``: its findings about files set aside."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "x"}},
        "agents": {"chat": {"primary": "m"}}, "log": {"path": str(log)}}))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "check", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return [f for f in json.loads(done.stdout)["findings"] if "was set aside beside it" in f["message"]]


def _run(suggestion: str) -> None:
    """The command ``check`` suggests, run as a user pastes it into a shell."""
    command = suggestion.removeprefix("get its rows back: ").split(" — then remove ")[0]
    subprocess.run(["sh", "-c", command], check=True, timeout=60, capture_output=True)


@pytest.mark.parametrize("folder", ["logs", "it's", "it's done!"])
def test_check_names_an_orphaned_log_and_its_command_gets_the_rows_back(tmp_path: Path, folder: str) -> None:
    """A writer killed with 20 rows in its write-ahead log, then ``rm log.sqlite3``: the 20 rows are kept in
    ``log.sqlite3.orphaned-<time>``. ``check`` names it with its 20 requests and the ATTACH command; run, the log has
    all 25 rows (before: ``check`` said nothing of it) — in a folder whose name a shell or SQL would read otherwise
    too."""
    (tmp_path / folder).mkdir()
    path = tmp_path / folder / "log.sqlite3"
    _killed_then_deleted(path, 20)
    writer = LogWriter(path)
    for i in range(100, 105):
        writer.submit(record(i))
    assert writer.flush(5)
    writer.close()
    aside = _aside(path)
    [found] = _check(tmp_path, path)
    assert aside.name in found["message"] and "20 request(s) SQLite can read" in found["message"], found
    assert "deleted while its write-ahead log stayed" in found["message"], found
    assert "ATTACH" in found["suggestion"] and "INSERT OR IGNORE" in found["suggestion"], found
    _run(found["suggestion"])
    assert sorted(rows(path)) == [f"r{i:05d}" for i in (*range(20), *range(100, 105))]
    _run(found["suggestion"])  # twice: nothing doubled
    assert len(rows(path)) == 25


def test_check_names_a_replaced_log_and_its_command_gets_the_rows_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``mv small.sqlite3 log.sqlite3`` over a running writer: the old file's 120 rows are copied whole to
    ``log.sqlite3.replaced-<time>``. ``check`` names it with its 120 requests; the command it gives puts back the 20
    the new file lacks (130 in all)."""
    path = _shrunk_and_moved_over(tmp_path, caplog, None)
    [kept] = list(tmp_path.glob("log.sqlite3.replaced-*"))
    [found] = _check(tmp_path, path)
    assert kept.name in found["message"] and "120 request(s) SQLite can read" in found["message"], found
    assert "another file was moved over the log" in found["message"], found
    _run(found["suggestion"])
    assert len(rows(path)) == 130


def test_check_says_an_orphaned_copy_whose_schema_went_with_the_deleted_file_cannot_be_read_as_tables(
        tmp_path: Path) -> None:
    """Rows checkpointed into the deleted file went with it, the schema's pages among them: the orphaned copy cannot
    be read as tables. ``check`` says so and points at ``.recover``, not at an ATTACH that would fail."""
    path = tmp_path / "log.sqlite3"
    _killed_then_deleted(path, 300, 20, "checkpoint-kill")
    LogWriter(path).close()
    aside = _aside(path)
    [found] = _check(tmp_path, path)
    assert aside.name in found["message"] and "pages SQLite cannot read as tables" in found["message"], found
    assert f"sqlite3 {aside} .recover" in found["suggestion"] and "ATTACH" not in found["suggestion"], found


def test_check_names_a_write_ahead_log_kept_without_its_database(tmp_path: Path) -> None:
    """``cp backup.sqlite3 log.sqlite3`` over a running writer's log: its write-ahead log, page images of the file the
    backup overwrote, is kept as ``log.sqlite3-wal.replaced-<time>`` (tests/integration/test_log_restored.py). No
    SQLite tool reads it: ``check`` names it as such and gives no command that cannot work."""
    from tests.integration.test_log_restored import backed_up_after_100, write_rows

    path, backup = tmp_path / "log.sqlite3", tmp_path / "backup.sqlite3"
    writer = backed_up_after_100(path, backup)
    try:
        write_rows(writer, range(100, 120))  # in the write-ahead log only
        shutil.copyfile(backup, path)
        write_rows(writer, range(1000, 1010))
    finally:
        writer.close()
    [kept] = list(tmp_path.glob("log.sqlite3-wal.replaced-*"))
    [found] = _check(tmp_path, path)
    assert kept.name in found["message"] and "a write-ahead log without its database" in found["message"], found
    assert not any(w in found["suggestion"] for w in (".recover", "ATTACH", "get its rows back")), found
    assert f"remove {kept.name}" in found["suggestion"], found
