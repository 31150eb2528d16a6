"""A waiter alone on its loop may wait for its row's commit blocking, for a short bound (issue #15): the
writer opens a lock for it instead of waking the loop through its selector. The loop is then held for at
most that bound, and not at all while the writer is stuck in an earlier batch (a stalled disk)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from tests.unit.test_ledger import record
from tests.unit.test_log_writer_handover import stored

from modelyard.gateway.drain import Drain
from modelyard.ledger import LogWriter


async def test_a_blocking_waiter_is_released_by_the_commit_itself(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    try:
        loop = asyncio.get_running_loop()
        for i in range(50):
            ran: list[int] = []
            writer.submit(record(i))
            loop.call_soon(ran.append, i)  # would run first if the wait went through the loop
            assert await writer.wait_written(5, block=1.0)
            assert ran == [], "the commit released the waiter without a loop iteration"
            assert writer.written == i + 1
            await asyncio.sleep(0)
        assert stored(writer.path) == 50 and writer._blocked is None
    finally:
        writer.close()


async def test_a_stalled_disk_holds_the_loop_for_one_bound_at_most(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    writer.submit(record(0))
    assert await writer.wait_written(5, block=0.1)
    stall = sqlite3.connect(writer.path, isolation_level=None, timeout=0)
    stall.execute("BEGIN EXCLUSIVE")  # the disk "stalls": the writer waits on its busy timeout
    try:
        writer.submit(record(1))
        t0 = time.monotonic()
        assert await writer.wait_written(0.5, block=0.1) is False  # the bound on the thread, then the async wait
        assert 0.45 < time.monotonic() - t0 < 2.5
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        writer.submit(record(2))
        # the writer has been stuck longer than the bound: this waiter does not block the loop at all
        assert await writer.wait_written(0.4, block=0.3) is False
        ticker.cancel()
        assert len(gaps) >= 10 and max(gaps) < 0.2, f"the loop was held: longest gap {max(gaps):.3f} s"
    finally:
        stall.execute("ROLLBACK")
        stall.close()
    assert await writer.wait_written(15, block=0.1)  # caught up: rows 1 and 2 written, nothing lost
    assert stored(writer.path) == 3 and writer._blocked is None
    writer.close()


async def test_a_blocking_waiter_is_released_when_the_writer_stops(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.db")
    stall = sqlite3.connect(writer.path, isolation_level=None, timeout=0)
    stall.execute("BEGIN EXCLUSIVE")
    try:
        writer.submit(record(1))
        stops = threading.Timer(0.1, writer._wake_all)  # what the writer thread does as it stops or dies
        stops.start()
        t0 = time.monotonic()
        assert await writer.wait_written(5, block=3.0) is False  # not committed, and not waited for to the bound
        assert time.monotonic() - t0 < 1.5
        stops.join()
    finally:
        stall.execute("ROLLBACK")
        stall.close()
    writer.close()
    assert stored(writer.path) == 1


async def test_drain_is_alone_with_one_request_in_flight() -> None:
    drain = Drain()
    assert drain.alone()
    first = drain.enter()
    assert drain.alone()

    async def other() -> bool:
        task = drain.enter()
        try:
            return drain.alone()
        finally:
            drain.leave(task)

    assert await asyncio.create_task(other()) is False
    drain.leave(first)
    assert drain.alone()
