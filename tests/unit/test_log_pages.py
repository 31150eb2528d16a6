"""How many pages a lone request's routing row writes (issue #15, round 29): the row is committed before its answer is
reported, and each page the commit changes is one write-ahead frame — a frame header and the page, two ``pwrite``s
(https://www.sqlite.org/fileformat.html, "WAL File Format"; SQLite's ``walWriteOneFrame``). Each index of a table the
row goes to is one more page; ``requests(agent, ts)`` and ``requests(model, ts)`` are no longer kept in the SQLite
file (ledger/migrations.py, m014), and their readers get the same rows."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter, queries
from modelyard.ledger.db import connect

#: bytes a frame adds to the write-ahead log per page (its 24-byte header)
FRAME_HEADER = 24


def submit(writer: LogWriter, rows: range, *, alone: bool = True) -> None:
    """Rows of three agents and two models; ``alone``: each committed before the next is submitted."""
    for i in rows:
        writer.submit(record(i, agent=("chat", "engineer", "writer")[i % 3], model=("local", "cloud")[i % 2]))
        if alone:
            assert writer.flush(5)
    assert writer.flush(5)


def test_a_lone_rows_commit_writes_at_most_seven_pages_on_average(tmp_path: Path) -> None:
    """150 rows, each committed alone (``flush`` after each): the write-ahead log grows by at most 7 frames a row
    (the requests row, its key and its ``ts`` index, the attempt row, its key and its ``(model, ts)`` index, a page
    split or the header now and then: 6.1 here; 8.1 with the two indexes dropped since, 9.6 with the gateway's random
    ids). No checkpoint runs before CHECKPOINT_EVERY (256) rows, so the file only grows meanwhile."""
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    try:
        submit(writer, range(20))
        wal = Path(f"{path}-wal")
        before = wal.stat().st_size
        submit(writer, range(20, 170))
        page = writer._conn.execute("PRAGMA page_size").fetchone()[0]
        frames = (wal.stat().st_size - before) / (page + FRAME_HEADER)
        assert writer.written == 170 and writer.errors == 0
    finally:
        writer.close()
    assert frames / 150 <= 7.0, f"{frames / 150:.2f} frames a row"


def test_an_old_log_loses_the_two_indexes_and_its_filters_read_the_same_rows(tmp_path: Path) -> None:
    """A log made before m014 (its indexes there) opens, drops them, and ``log --agent/--model``'s read gives the same
    rows, newest first, as it did through them."""
    path = tmp_path / "log.db"
    writer = LogWriter(path)
    try:
        submit(writer, range(60), alone=False)
    finally:
        writer.close()
    old = sqlite3.connect(path)
    old.execute("CREATE INDEX requests_agent_ts ON requests(agent, ts)")
    old.execute("CREATE INDEX requests_model_ts ON requests(model, ts)")
    old.execute("DELETE FROM _migrations WHERE name = 'm014_requests_without_agent_and_model_indexes'")
    old.execute(f"PRAGMA user_version={old.execute('PRAGMA user_version').fetchone()[0] - 1}")
    old.commit()
    indexed = sqlite3.connect(path)
    indexed.row_factory = sqlite3.Row
    want = {(kind, name): [r["id"] for r in queries.recent(indexed, 7, **{kind: name})]
            for kind, name in (("agent", "engineer"), ("model", "cloud"), ("agent", "nobody"))}
    indexed.close()
    old.close()
    conn = connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "requests_agent_ts" not in names and "requests_model_ts" not in names and "requests_ts" in names
    got = {(kind, name): [r["id"] for r in queries.recent(conn, 7, **{kind: name})]
           for kind, name in (("agent", "engineer"), ("model", "cloud"), ("agent", "nobody"))}
    assert got == want and len(got[("agent", "engineer")]) == 7 and got[("agent", "nobody")] == []
    assert os.path.exists(path)
