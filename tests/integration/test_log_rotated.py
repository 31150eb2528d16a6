"""The routing log rotated by the real ``logrotate`` while a writer has it open — a glob such as
``/var/lib/modelyard/*`` or a ``*.sqlite3`` line in /etc/logrotate.d takes the log for a text log (people do rotate
SQLite files with it: cvmfs/cvmfs#2845). ``copytruncate`` copies the file and then empties it in place (``cp
/dev/null`` over it: weewx/weewx#791), which loses what is written in between even for text (logrotate/logrotate#34);
``create`` renames it and makes a new empty file.

Either way no row answered is lost: the rows written before are in the rotated copy plus the old write-ahead log the
writer sets aside (together they open as the whole old log; after ``create`` the rotated file alone), the rows after
go into the file now at the path, and the writer says what happened. An emptied file was said as 'overwritten: a file
was copied over it' — an operator looked for a restore that never happened; now it says it was emptied, by what, and
to take the log out of logrotate's list.
(``create``: guard — the rows held already, as after any ``mv`` over the log.)"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration.test_log_restored import checkpoint_elsewhere, ids, write_rows

from modelyard.ledger import LogWriter


@pytest.fixture(autouse=True)
def no_idle_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's idle checkpoint would copy the rows meant to stay in the write-ahead log into the file."""
    monkeypatch.setattr("modelyard.ledger.writer.CHECKPOINT_IDLE", 3600.0)


def logrotate(path: Path, how: str) -> None:
    """``logrotate -f`` with a configuration of the log alone (``how``: copytruncate, or create)."""
    conf = path.parent / "logrotate.conf"
    conf.write_text(f"{path} {{\n    rotate 2\n    {how}\n    missingok\n    nocompress\n}}\n")
    done = subprocess.run(["logrotate", "-f", "-s", str(path.parent / "logrotate.state"), str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def old_log(path: Path, rotated: Path) -> list[str]:
    """The rows of the log as it was at the rotation: the rotated copy, with the write-ahead log set aside beside it
    when there is one (``copytruncate``: the file emptied in place). ``create`` renames the file, which keeps a name:
    the writer copies its write-ahead log into it (round 38, ledger/replaced.py), and it is whole by itself."""
    whole = path.parent / "old.sqlite3"
    shutil.copyfile(rotated, whole)
    for aside in path.parent.glob(f"{path.name}-wal.replaced-*"):
        shutil.copyfile(aside, f"{whole}-wal")
    return ids(whole)


@pytest.mark.parametrize("how", ["copytruncate", "create"])
def test_a_log_rotated_by_logrotate_loses_no_row_and_says_what_happened(tmp_path: Path, how: str) -> None:
    path = tmp_path / "routing.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        write_rows(writer, range(100))
        checkpoint_elsewhere(path, whole=True)  # the first 100 in the file itself
        write_rows(writer, range(100, 120))  # these in the write-ahead log only
        logrotate(path, how)
        write_rows(writer, range(1000, 1010))
        health = writer.health()
        assert health.lost == 0 and health.degraded, health
        said = health.last_error or ""
        if how == "copytruncate":
            assert "emptied in place" in said and "take it out of logrotate" in said, said
        else:
            assert "replaced by another file" in said, said
    finally:
        writer.close()
    assert ids(path) == [f"req{i:06d}" for i in range(1000, 1010)]
    assert old_log(path, path.with_name(f"{path.name}.1")) == [f"req{i:06d}" for i in range(120)]
    assert len(list(tmp_path.glob(f"{path.name}-wal.replaced-*"))) == (how == "copytruncate")


def test_a_vacuum_by_the_sqlite3_shell_is_no_restore_and_loses_nothing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The other maintenance an operator runs on the live log — old rows deleted and the file compacted (``VACUUM``,
    DB Browser's 'Compact Database') then checkpointed to its new size (``PRAGMA wal_checkpoint(TRUNCATE)``): the file
    shrinks under the writer with its inode kept, as a file copied over it does, and the writer's checkpoint notes
    tell the two apart. A TRUNCATE (or RESTART) checkpoint starts the write-ahead log over itself, empty: when the
    writer had last seen everything copied, that read as no checkpoint at all, so the vacuum was taken for a restore —
    the write-ahead log set aside, rows committed in it since the vacuum with it (1 run in 4 at load 7, whenever the
    writer's own idle checkpoint came last). Now nothing is set aside and no row is lost."""
    monkeypatch.setattr("modelyard.ledger.writer.CHECKPOINT_IDLE", 0.1)
    path = tmp_path / "routing.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        write_rows(writer, range(600))
        time.sleep(1.0)  # the writer's idle checkpoint: the last note it saw has everything copied
        before = path.stat().st_size
        done = subprocess.run(["sqlite3", str(path), ".timeout 20000",
                               "DELETE FROM attempts WHERE request_id < 'req000400'",
                               "DELETE FROM requests WHERE id < 'req000400'", "VACUUM",
                               "PRAGMA wal_checkpoint(TRUNCATE)"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert path.stat().st_size < before
        write_rows(writer, range(1000, 1050))
        health = writer.health()
        assert health.failures == 0 and health.lost == 0, health.last_error
    finally:
        writer.close()
    assert ids(path) == [f"req{i:06d}" for i in [*range(400, 600), *range(1000, 1050)]]
    assert not list(tmp_path.glob("routing.sqlite3-wal.replaced-*"))
