"""The routing log's in-memory queue is bounded: a stalled disk costs counted rows, never the process."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.fakes.server import poll
from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter, connect


def test_overflow_is_dropped_counted_and_shown_while_the_rest_is_written(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, max_queue=100)
    writer.submit(record(0))
    assert writer.flush()
    stall = sqlite3.connect(path, isolation_level=None, timeout=0)
    stall.execute("BEGIN EXCLUSIVE")  # the disk "stalls": the writer waits on its busy timeout
    try:
        writer.submit(record(1))
        poll(lambda: writer.health().queued == 1 and writer._queue.qsize() == 0)  # the writer holds record 1
        t0 = time.monotonic()
        for i in range(2, 302):
            writer.submit(record(i))
        assert time.monotonic() - t0 < 1.0  # submit never blocks
        health = writer.health()
        assert health.dropped == 200 and health.degraded and "dropped" in (health.last_error or "")
        assert health.queued == 101
    finally:
        stall.execute("ROLLBACK")
        stall.close()
    assert writer.flush(30)  # what was kept is written; nobody waits for the dropped ones
    ids = {r[0] for r in connect(path).execute("SELECT id FROM requests")}
    assert len(ids) == 102 and "req000101" in ids and "req000102" not in ids
    writer.close()
