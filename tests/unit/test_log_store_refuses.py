"""The routing log's store refusing writes for a while (helper-34's hunt): a full disk, the file locked by
another process past the busy timeout. Before, the rows of those seconds were counted as lost and never
written; now they are held (nobody waits on them) and written once the store takes writes again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.unit.test_log_writer_faults import record, rows

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module

#: one child process: a log writer whose file may grow only so far (RLIMIT_FSIZE: the disk is full), then may
#: grow again (space freed); it prints the counts the writer reports
DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, time
    from pathlib import Path
    from modelyard.ledger import LogWriter
    from tests.unit.test_log_writer_faults import record

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
    path = Path(sys.argv[1])
    writer = LogWriter(path)
    for i in range(20):
        writer.submit(record(i))
    assert writer.flush(5)
    used = sum(p.stat().st_size for p in path.parent.iterdir())
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (used + 4096, hard))  # the disk is (nearly) full
    for i in range(20, 220):
        writer.submit(record(i, prompt="x" * 2000))
    start = time.monotonic()
    assert writer.flush(5)  # settled at once: nobody waits on a full disk
    waited = time.monotonic() - start
    full = writer.health()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space freed
    deadline = time.monotonic() + 10
    while getattr(writer, "held", 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.close()
    h = writer.health()
    print(full.failures, full.lost, h.written, h.lost, round(waited, 2))
""")


def test_rows_refused_by_a_full_disk_are_written_once_there_is_room(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    done = subprocess.run([sys.executable, "-c", DISK_FULL, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    failures, lost_while_full, written, lost, waited = done.stdout.split()
    assert int(failures) > 0, "the disk never refused a write: the test did not test anything"
    assert (int(lost_while_full), int(lost), int(written)) == (0, 0, 220), done.stdout
    assert float(waited) < 1.0
    assert len(rows(path)) == 220


def test_rows_refused_while_another_process_holds_the_lock_are_written_after(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process (a backup, a `sqlite3` shell left in a transaction) holds the write lock past the busy
    timeout (shortened here from 10 s): the rows wait in memory and go in once the lock is released."""
    monkeypatch.setattr(writer_module, "BUSY_TIMEOUT", 0.2, raising=False)
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    writer.submit(record(0))
    assert writer.flush(3)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sqlite3, sys, time
        conn = sqlite3.connect(sys.argv[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
        conn.execute("ROLLBACK")
    """), str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

        async def answered() -> float:
            for i in range(1, 11):
                writer.submit(record(i))
            start = time.monotonic()
            await writer.wait_written(5)
            return time.monotonic() - start

        assert asyncio.run(answered()) < 1.5, "a request waited for the whole lock"
        holder.wait(10)
        deadline = time.monotonic() + 10
        while getattr(writer, "held", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        h = writer.health()
        assert h.failures > 0 and h.lost == 0 and h.written == 11, h
        assert len(rows(path)) == 11
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()  # its pipe, else an unclosed-file ResourceWarning when the collector takes it
        writer.close()


def test_rows_still_refused_at_close_are_kept_and_written_by_the_next_writer(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart (a deploy, Ctrl-C) while the store refuses: the rows held were counted lost and gone with the
    process; now they are kept in a file (ledger/held.py) and the next writer of the log writes them."""
    monkeypatch.setattr(writer_module, "BUSY_TIMEOUT", 0.1, raising=False)
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    writer.submit(record(0))
    assert writer.flush(3)
    import sqlite3
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        writer.submit(record(1))
        writer.submit(record(2, prompt="a\x00b \ud83d"))  # repaired as the writer repairs, kept as written
        assert writer.flush(3)
        deadline = time.monotonic() + 5
        while writer.held < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.held == 2
        start = time.monotonic()
        writer.close()
        assert time.monotonic() - start < 5
        health = writer.health()
        assert health.lost == 0 and health.saved == 2 and writer.held == 0 and health.queued == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    kept = list(tmp_path.glob("log.db.held-*"))
    assert len(kept) == 1 and kept[0].stat().st_mode & 0o077 == 0
    again = LogWriter(path)  # the next start: the store takes writes again
    try:
        assert again.recovered == 4  # two requests with an attempt each
    finally:
        again.close()
    assert sorted(rows(path)) == ["r00000", "r00001", "r00002"]
    assert not list(tmp_path.glob("log.db.held-*"))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT prompt FROM requests WHERE id = 'r00002'").fetchone()[0] == "a\x00b \ufffd"
    conn.close()


def test_rows_held_for_a_refusing_store_stay_within_max_queue(tmp_path: Path) -> None:
    """Memory stays bounded while the store refuses for long: held rows count against ``max_queue``; past it
    new requests are dropped and counted (as for a stalled disk), and what is held is written afterwards."""
    import sqlite3

    path = tmp_path / "log.db"
    writer = LogWriter(path, max_queue=10)
    writer.submit(record(0))
    assert writer.flush(3)
    other = sqlite3.connect(path)
    other.execute("ALTER TABLE attempts RENAME TO attempts_away")
    other.commit()
    for i in range(1, 41):
        writer.submit(record(i))
        writer.flush(3)
    h = writer.health()
    assert writer.held <= 10 and h.dropped >= 30 and h.lost == 0, h
    other.execute("ALTER TABLE attempts_away RENAME TO attempts")
    other.commit()
    other.close()
    deadline = time.monotonic() + 10
    while writer.held and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.close()
    h = writer.health()
    assert h.lost == 0 and h.written + h.dropped == 41 and len(rows(path)) == h.written
