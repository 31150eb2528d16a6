"""A lone request's routing row is committed on its own loop's thread at the hand-off (issue #15, rounds 22 and 26):
no wake-up of the writer thread and none back. Kept: rows settle in the order they get their place (a waiter is
released only once its own row is committed: tests/unit/test_log_writer_order.py), another process's write lock never
holds the loop (SQLite's busy timeout is 0 there: https://www.sqlite.org/c3ref/busy_timeout.html — the lock is
refused at once with SQLITE_BUSY, https://sqlite.org/rescode.html#busy, and ``BEGIN IMMEDIATE`` takes WAL's one
write lock up front, the fix Bert Hubert's "What to do about SQLITE_BUSY errors despite setting a timeout" gives, via
https://simonwillison.net/2025/Feb/17/sqlite-busy), and a kill -9 loses no row a waiter was told is committed."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.unit.test_ledger import record
from tests.unit.test_log_writer_handover import stored
from tests.unit.test_log_writer_order import present

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module

ROOT = Path(__file__).resolve().parents[2]


async def test_a_lone_row_is_committed_on_the_submitting_thread_before_submit_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of 20 lone rows (QUICK_COMMIT lifted: a loaded machine's slow commit would send the next row to the
    writer thread, which is right there and not what this asks) is in the file before ``submit`` returns."""
    monkeypatch.setattr(writer_module, "QUICK_COMMIT", 10.0)
    writer = LogWriter(tmp_path / "log.db")
    threads: list[str] = []
    writer.on_commit(lambda: threads.append(threading.current_thread().name))
    try:
        me = threading.current_thread().name
        for i in range(20):
            writer.submit(record(i))
            if threads and threads[-1] == me:  # committed here: in the file before submit returned
                assert present(writer.path, f"req{i:06d}")
            assert await writer.wait_written(5, block=0.002)
            await asyncio.sleep(0)
        assert threads.count(me) == 20, f"commits on the loop's thread: {threads.count(me)} of 20"
        assert writer.written_here == 20
        assert stored(writer.path) == 20 and writer.written == 20 and writer.errors == 0
    finally:
        writer.close()


async def test_rows_after_the_first_of_an_iteration_still_go_together(tmp_path: Path) -> None:
    """Only an iteration's first row is written here; the rest are held and handed over at its end in one
    transaction, as tests/unit/test_log_writer_handover.py asks (where the old code gave [20] or [1, 20] by how
    the threads met, the first row is now always committed alone, on this thread, before submit returned)."""
    writer = LogWriter(tmp_path / "log.db")
    commits: list[tuple[int, str]] = []
    writer.on_commit(lambda: commits.append((writer.written, threading.current_thread().name)))
    try:
        for i in range(20):
            writer.submit(record(i))
        assert await writer.wait_written(5)
        deadline = time.monotonic() + 5
        while (not commits or commits[-1][0] < 20) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [n for n, _ in commits] == [1, 20]
        assert commits[0][1] == threading.current_thread().name, "the first row: committed on the loop's thread"
    finally:
        writer.close()


async def test_a_row_behind_unsettled_rows_waits_its_turn(tmp_path: Path) -> None:
    """Guard: rows of a crowd are still held when a lone row comes on the same loop, so the lone row is held behind
    them too and all go in one hand-over — committed here it would settle before rows submitted ahead of it."""
    writer = LogWriter(tmp_path / "log.db")
    threads: list[str] = []
    writer.on_commit(lambda: threads.append(threading.current_thread().name))
    try:
        for i in range(5):
            writer.submit(record(i), crowd=True)
        writer.submit(record(5))
        assert await writer.wait_written(5)
        assert stored(writer.path) == 6
        assert threading.current_thread().name not in threads, "behind unsettled rows: not out of turn on the loop"
    finally:
        writer.close()


async def test_another_process_holding_the_write_lock_does_not_hold_the_loop(tmp_path: Path) -> None:
    """Guard: a lone row meets another connection's write transaction (``BEGIN IMMEDIATE``, as a second modelyard
    process or the ``sqlite3`` shell holds it): submit returns at once — with the writer's 10 s busy timeout on the
    loop's thread it would wait the whole time — and the writer thread commits the row once the lock is released."""
    writer = LogWriter(tmp_path / "log.db")
    other = sqlite3.connect(writer.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        writer.submit(record(1))
        assert time.monotonic() - t0 < 0.5, "the loop waited for another process's write lock"
        assert not await writer.wait_written(0.3, block=0.002)  # not committed yet: nothing said otherwise
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await writer.wait_written(15)
    assert stored(writer.path) == 1 and writer.errors == 0
    writer.submit(record(2))  # the writer carries on as before
    assert await writer.wait_written(5)
    writer.close()
    assert stored(writer.path) == 2


_CHILD = r"""
import asyncio, sys
from tests.unit.test_ledger import record
from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module

async def main():
    writer = LogWriter(sys.argv[1])
    i = 0
    while True:
        writer.submit(record(i), crowd=i % 5 == 4)
        if await writer.wait_written(10, block=0.002):
            sys.stdout.write(f"{i}\n")
            sys.stdout.flush()
        i += 1
        if i % 3 == 0:
            await asyncio.sleep(0)

asyncio.run(main())
"""


def test_kill_9_loses_no_row_a_waiter_was_told_is_committed(tmp_path: Path) -> None:
    """Guard, the crash: a child writing lone rows here and crowd rows through the thread is killed with SIGKILL
    mid-stream; every row whose wait said written before the kill is in the log afterwards (SQLite's WAL: a
    committed transaction survives the process, https://www.sqlite.org/wal.html)."""
    path = tmp_path / "log.db"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    assert child.stdout is not None
    told: list[int] = []
    deadline = time.monotonic() + 60
    while len(told) < 400 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        told.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    told += [int(x) for x in child.stdout.read().split()]  # lines written before the kill, not yet read
    child.stdout.close()
    assert len(told) >= 400, "the child did not get going"
    conn = sqlite3.connect(path)
    try:
        present = {int(r[0][3:]) for r in conn.execute("SELECT id FROM requests")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    missing = [i for i in told if i not in present]
    assert not missing, f"{len(missing)} rows reported written are not in the log: {missing[:10]}"
