"""The routing log's write-ahead files deleted while a writer has them open (ledger9's hunt): a clean-up that takes
``log.sqlite3-wal`` and ``-shm`` for temporary files, a backup tool that removes the ``-shm`` (nfrastack/db-backup#423),
better-sqlite3#1237's "no exception is thrown". SQLite goes on committing into the unlinked files, which only this
process can see: every other process (``modelyard log``, ``report``, the dashboard of another ``serve``) read the log
as it was before — a new log's file has not even its tables — and a crash lost every row committed since (SQLite's
howtocorrupt, 1.3: a hot journal deleted). Now the writer notices (one look a second) and copies each commit into the
database file at once, says so, and is degraded until it is restarted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter

COUNT = ("import sqlite3, sys; "
         "print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM requests').fetchone()[0])")


#: opens the log, says its count and keeps it open until its stdin closes
HOLD = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute('SELECT COUNT(*) FROM requests').fetchone()[0], flush=True); sys.stdin.read(); c.close()")


def written_then_deleted(writer: LogWriter, path: Path, rows: int, deleted: tuple[str, ...]) -> None:
    """``rows`` rows committed, then the write-ahead files ``deleted``, and the writer's next look (once a second)."""
    for i in range(rows):
        writer.submit(record(i))
    assert writer.flush()
    for suffix in deleted:
        os.unlink(f"{path}{suffix}")
    time.sleep(1.1)


def seen_elsewhere(path: Path) -> str:
    """What another process reads from the log: the count, or its error."""
    done = subprocess.run([sys.executable, "-c", COUNT, str(path)], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("deleted", [("-wal", "-shm"), ("-wal",)], ids=["wal+shm", "wal"])
def test_rows_committed_after_the_write_ahead_files_were_deleted_reach_the_file(tmp_path: Path,
                                                                                deleted: tuple[str, ...]) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    try:
        written_then_deleted(writer, path, 20, deleted)
        for i in range(20, 40):
            writer.submit(record(i))
        assert writer.flush()
        assert seen_elsewhere(path) == "40"  # before: "no such table: requests" (nothing was ever checkpointed)
        for i in range(40, 50):  # and each later commit too
            writer.submit(record(i))
        assert writer.flush()
        assert seen_elsewhere(path) == "50"
        health = writer.health()
        assert health.written == 50 and health.lost == 0 and health.degraded
        assert "write-ahead" in (health.last_error or ""), health.last_error
    finally:
        writer.close()
    assert seen_elsewhere(path) == "50"


def test_another_process_opening_the_log_since_is_said_with_what_to_restart(tmp_path: Path) -> None:
    """Leftover of ledger9's hunt: with the write-ahead files deleted, a process that opens the log afterwards makes
    new ones at the path, and one that writes there (a second serve, ask) puts its commits in a second write-ahead
    log of the same file, which corrupts it (MemPalace/mempalace#2045: 'WAL sidecars unlinked under live writers',
    then 'database disk image is malformed' in every writer). Restarting one process of two is exactly that, so it is
    said: stop every one, then start them."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    try:
        written_then_deleted(writer, path, 10, ("-wal", "-shm"))
        writer.submit(record(10))
        assert writer.flush()
        assert "stop every modelyard process using this log" in (writer.health().last_error or "")
        other = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:  # another process that opened it since and keeps it open: new -wal and -shm at the path
            assert other.stdout is not None and other.stdout.readline().strip() == "11"
            assert os.path.exists(f"{path}-wal")
            time.sleep(1.1)
            writer.submit(record(11))
            assert writer.flush()
        finally:
            other.communicate("", timeout=60)
        said = writer.health().last_error or ""
        assert "another process opened it since" in said and "two write-ahead logs of one file" in said, said
        assert f"fuser {path}" in said
    finally:
        writer.close()
    assert seen_elsewhere(path) == "12"
