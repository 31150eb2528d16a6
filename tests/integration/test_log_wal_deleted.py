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
        for i in range(20):
            writer.submit(record(i))
        assert writer.flush()
        for suffix in deleted:
            os.unlink(f"{path}{suffix}")
        time.sleep(1.1)  # the writer looks once a second
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
