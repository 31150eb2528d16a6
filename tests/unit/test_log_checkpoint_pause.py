"""A due checkpoint of the routing log waits for a pause in the commits, but never for ever (issue #15, round 38).

A checkpoint's fsyncs and the writeback of the log's ~7-9 MB per 256 rows took ~6-25 ms on the 2-core Xeon, and the
~2% of requests at one client that ran beside one made ``serve``'s p99 (hotpath_tail.py, 2026-12-02: 1.29-1.39 ms
with checkpoints, 1.16 ms without). SQLite's own advice for applications that turn the automatic checkpoint off is
to "run checkpoints during idle moments or in a separate thread" (https://www.sqlite.org/wal.html, "Application-
Initiated Checkpoints"); waiting for idleness alone is how a log grows without bound under steady traffic — a
production queue on SQLite saw a write-ahead log of more than 850 MiB where 4 MiB was expected when its checkpoints
never got through (channable/opsqueue pull request 85). So both are tested here: the wait, and its end.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.unit.test_log_writer_checkpoint import record, rows_in_database_file, started_over

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module
from modelyard.ledger.writer import CHECKPOINT_EVERY


def commit(writer: LogWriter, i: int) -> None:
    """One row, one commit: as a gateway at one client does (its answer waits for the commit)."""
    writer.submit(record(i))
    assert writer.flush(timeout=5)


def test_a_due_checkpoint_waits_for_the_commits_to_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows past CHECKPOINT_EVERY committed back to back: nothing is copied into the file while they keep coming (the
    code before checkpointed at row 256 at once, beside the next requests); once they stop, the checkpoint follows
    within the pause it waits for. The pause is set to 1 s here so that a slow moment of a busy test machine between
    two commits is not taken for one."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_QUIET", 1.0, raising=False)
    monkeypatch.setattr(writer_module, "CHECKPOINT_IDLE", 3600.0)  # only the due checkpoint can copy anything
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    try:
        n = 2 * CHECKPOINT_EVERY - 32  # past the due mark, short of the mark where it runs without a pause
        for i in range(n):
            commit(writer, i)
        assert writer._checkpoints is not None, "the due mark was not reached: the test proves nothing"
        copied = rows_in_database_file(path, tmp_path)
        assert copied <= 0, f"{copied} rows copied into the file while rows kept coming (no pause yet)"
        deadline = time.monotonic() + 10
        while rows_in_database_file(path, tmp_path) < n:
            assert time.monotonic() < deadline, "the checkpoint did not follow the pause"
            time.sleep(0.05)
        assert writer.health().failures == 0
    finally:
        writer.close()


def test_commits_that_never_pause_are_checkpointed_all_the_same(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that is never idle (no pause is ever long enough) still has its log checkpointed — once another
    CHECKPOINT_EVERY rows have come after the due mark — and the write-ahead log is still started over (WAL_BOUND,
    lowered here as in test_log_writer_checkpoint.py so that each checkpoint is past it), so the file does not grow
    with the rows: the guarantee the wait must keep."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_QUIET", 3600.0, raising=False)
    monkeypatch.setattr(writer_module, "CHECKPOINT_IDLE", 3600.0)
    monkeypatch.setattr(writer_module, "WAL_BOUND", 2 * 1024 * 1024)
    path = tmp_path / "log.db"
    wal = Path(f"{path}-wal")
    writer = LogWriter(path)
    n, copied, restarts, seq = 0, 0, 0, started_over(wal)
    deadline = time.monotonic() + 60
    try:
        # one commit per row and never a pause, until the log was started over twice and the file holds rows
        while restarts < 2 or copied < 2 * CHECKPOINT_EVERY:
            assert time.monotonic() < deadline, (
                f"after {n} rows: {copied} copied into the file, the log started over {restarts} times")
            commit(writer, n)
            n += 1
            now = started_over(wal)
            restarts += now != seq
            seq = now
            if n % 64 == 0:
                copied = max(copied, rows_in_database_file(path, tmp_path))
        assert writer.health().failures == 0
    finally:
        writer.close()
    assert rows_in_database_file(path, tmp_path) == n


def test_closing_while_a_checkpoint_waits_for_a_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint thread waiting for a pause does not hold up close(), and close() still folds every row into the
    file (the writer's last connection checkpoints as it closes)."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_QUIET", 3600.0, raising=False)
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    n = CHECKPOINT_EVERY + 10
    for i in range(n):
        commit(writer, i)
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5
    assert writer._checkpoints is not None and not writer._checkpoints.is_alive()
    assert rows_in_database_file(path, tmp_path) == n
