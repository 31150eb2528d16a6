"""Rows submitted on an event loop reach the writer thread together (issue #15): the first of a loop
iteration at once, the rest of that iteration in one hand-over at its end, instead of one wake-up each. No
row is left behind by it: a flush in the loop's own thread, or a loop that stopped first, hand them over."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter, connect


def stored(path: Path) -> int:
    conn = connect(path, readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    finally:
        conn.close()


async def test_rows_of_one_loop_iteration_are_committed_together(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    commits: list[int] = []
    writer.on_commit(lambda: commits.append(writer.written))
    try:
        for i in range(20):
            writer.submit(record(i))
        assert writer._queue.qsize() <= 1  # the first row went at once, the rest are held until the iteration ends
        assert await writer.wait_written(5)
        deadline = time.monotonic() + 5  # the listeners run just after the waiters are released
        while (not commits or commits[-1] < 20) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert commits in ([20], [1, 20]), "the first row, then one hand-over and one transaction for the rest"
        assert stored(writer.path) == 20
    finally:
        writer.close()


async def test_with_other_requests_in_flight_even_the_first_row_waits_for_the_iteration_end(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    commits: list[int] = []
    writer.on_commit(lambda: commits.append(writer.written))
    try:
        for i in range(20):
            writer.submit(record(i), crowd=True)
        assert writer._queue.qsize() == 0  # nothing woke the writer yet: one hand-over at the iteration's end
        assert await writer.wait_written(5)
        deadline = time.monotonic() + 5
        while (not commits or commits[-1] < 20) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert commits == [20], "one transaction for the iteration's rows"
        assert stored(writer.path) == 20
    finally:
        writer.close()


async def test_a_blocking_flush_in_the_loops_own_thread_does_not_wait_for_itself(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    try:
        writer.submit(record(1))
        t0 = time.monotonic()
        assert writer.flush(timeout=5) and time.monotonic() - t0 < 2
        assert stored(writer.path) == 1
    finally:
        writer.close()


def test_rows_held_by_a_loop_that_stopped_are_written(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    loop = asyncio.new_event_loop()

    async def answer() -> None:
        writer.submit(record(1))  # goes at once
        writer.submit(record(2))  # held for the end of the iteration
        loop.stop()  # the hand-over scheduled for the next iteration never runs

    task = loop.create_task(answer())
    loop.run_forever()
    assert task.done()
    loop.close()
    try:
        assert writer.health().queued >= 1  # record 2 cannot have been written yet
        assert writer.flush(timeout=5)
        assert stored(writer.path) == 2
    finally:
        writer.close()


async def test_a_stalled_disk_releases_the_waiter_at_its_bound_and_a_cancelled_waiter_is_harmless(
        tmp_path: Path) -> None:
    import sqlite3

    writer = LogWriter(tmp_path / "log.db")
    writer.submit(record(0))
    assert await writer.wait_written(5)
    stall = sqlite3.connect(writer.path, isolation_level=None, timeout=0)
    stall.execute("BEGIN EXCLUSIVE")  # the disk "stalls": the writer waits on its busy timeout
    try:
        writer.submit(record(1))
        t0 = time.monotonic()
        assert await writer.wait_written(0.3) is False  # answered anyway, at the bound
        assert 0.25 < time.monotonic() - t0 < 2
        ticks = 0

        async def tick() -> None:  # the loop keeps serving while a waiter waits
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        waiter = asyncio.create_task(writer.wait_written(5))
        await asyncio.sleep(0.2)
        waiter.cancel()  # the client went away
        await asyncio.gather(waiter, return_exceptions=True)
        assert waiter.cancelled() and ticks >= 5
        ticker.cancel()
    finally:
        stall.execute("ROLLBACK")
        stall.close()
    assert await writer.wait_written(15)  # the writer catches up; the cancelled waiter's future is skipped
    assert stored(writer.path) == 2 and writer.health().failures == 0
    writer.close()
