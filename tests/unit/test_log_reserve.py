"""The routing log's write-ahead log gets its next blocks before commits append to them (issue #15).

On ext4 a commit appending to a block the ``-wal`` file did not have yet waited for the checkpoint's fsync of that
file: perf's sched_switch stacks showed the loop's thread in ``ext4_da_get_block_prep`` (the inode's ``i_data_sem``,
held by writeback while it allocates blocks) for 4–24 ms, 2–8 times per 3,000 one-row commits, each inside a checkpoint
(benchmarks/README.md, round 37). The checkpoint thread now allocates ``WAL_AHEAD`` bytes past the file's end first,
with ``fallocate(FALLOC_FL_KEEP_SIZE)``: the file's size and bytes — all SQLite reads — stay as they were.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module
from modelyard.ledger.reserve import reserve_ahead
from modelyard.router.records import Attempt, RequestRecord

MIB = 1024 * 1024


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def supported(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.write_bytes(b"x")
    return reserve_ahead(probe, MIB, 2 * MIB) and allocated(probe) >= MIB


def record(i: int) -> RequestRecord:
    return RequestRecord(id=f"r{i:05d}", agent="chat", outcome="ok", model="local",
                         attempts=[Attempt("local", "openai", "ok", tokens_in=3, tokens_out=4)])


def test_blocks_are_allocated_past_the_end_and_not_one_byte_changes(tmp_path: Path) -> None:
    if not supported(tmp_path):
        pytest.skip("this filesystem has no fallocate(FALLOC_FL_KEEP_SIZE): commits append as before")
    wal = tmp_path / "log.db-wal"
    content = os.urandom(100_000)
    wal.write_bytes(content)
    assert reserve_ahead(wal, 4 * MIB, 80 * MIB)
    assert wal.read_bytes() == content  # same size, same bytes: SQLite reads nothing new
    assert allocated(wal) >= len(content) + 4 * MIB - 4096


def test_never_past_the_limit_sqlite_cuts_the_file_back_to(tmp_path: Path) -> None:
    if not supported(tmp_path):
        pytest.skip("this filesystem has no fallocate(FALLOC_FL_KEEP_SIZE): commits append as before")
    wal = tmp_path / "log.db-wal"
    wal.write_bytes(b"\0" * (3 * MIB))
    assert reserve_ahead(wal, 16 * MIB, 4 * MIB)
    assert 4 * MIB <= allocated(wal) < 5 * MIB
    assert not reserve_ahead(wal, 16 * MIB, 2 * MIB)  # already past it: nothing to do
    assert wal.stat().st_size == 3 * MIB


def test_a_missing_write_ahead_log_is_not_made(tmp_path: Path) -> None:
    wal = tmp_path / "log.db-wal"
    assert not reserve_ahead(wal, MIB, 2 * MIB)
    assert not wal.exists()  # SQLite's to create (a file made here would be taken for its log)


def test_the_checkpoint_thread_allocates_the_next_blocks_before_its_fsync(tmp_path: Path, monkeypatch) -> None:
    """Without it the -wal file's blocks end at its size (each append reserved a new block, the wait above)."""
    if not supported(tmp_path):
        pytest.skip("this filesystem has no fallocate(FALLOC_FL_KEEP_SIZE): commits append as before")
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 16)
    path = tmp_path / "log.db"
    wal = Path(f"{path}-wal")
    writer = LogWriter(path)
    try:
        for i in range(40):  # one commit per row, as at concurrency 1: past the checkpoint's rows twice
            writer.submit(record(i))
            assert writer.flush(timeout=5)
        deadline = time.monotonic() + 10
        while allocated(wal) < wal.stat().st_size + 4 * MIB and time.monotonic() < deadline:
            time.sleep(0.05)
        size, blocks = wal.stat().st_size, allocated(wal)
        assert blocks >= size + 4 * MIB, \
            f"the -wal file has {blocks} bytes of blocks for {size} bytes: nothing allocated ahead"
        for i in range(40, 60):  # and the log reads as before
            writer.submit(record(i))
        assert writer.flush(timeout=5)
        assert writer.health().failures == 0
    finally:
        writer.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 60
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
