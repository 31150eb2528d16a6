"""A batch's rows go into the routing log a group of rows per INSERT statement (issue #15): ``executemany`` ran one
statement step per row, each releasing the GIL and taking it back from the event loop's thread. What is stored is the
same as row by row, a later row with the same id replacing the earlier as ``INSERT OR REPLACE`` always did."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter
from modelyard.ledger.writer import _INSERT_ATTEMPT, _INSERT_REQUEST, HOST, attempt_rows, request_row
from modelyard.outcomes import RequestOutcome


def batch() -> list:
    records = [record(i, outcome=RequestOutcome.FALLBACK if i % 3 == 0 else RequestOutcome.OK, cost=i / 7)
               for i in range(77)]
    records[40] = record(5, model="other", total=9.5)  # an id seen before in the batch: the later row stays
    return records


def contents(conn: sqlite3.Connection) -> tuple[list, list]:
    return (conn.execute("SELECT * FROM requests ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM attempts ORDER BY request_id, seq").fetchall())


def test_a_batch_is_stored_as_row_by_row_in_a_few_statements(tmp_path: Path) -> None:
    records = batch()
    writer = LogWriter(tmp_path / "grouped.db")
    statements: list[str] = []
    try:
        writer._conn.set_trace_callback(statements.append)
        ok, lost, held = writer._write(records)
        writer._conn.set_trace_callback(None)
        assert (ok, lost, held) == (77, 0, [])
        got = contents(writer._conn)
    finally:
        writer.close()
    inserts = [s for s in statements if s.startswith("INSERT")]
    # 77 requests: 32 + 32 + 8 + 4 + 1; 103 attempts: 32 + 32 + 32 + 4 + 2 + 1 (one step each; it was 180)
    assert len(inserts) == 11, f"{len(inserts)} INSERT statements for 77 requests and their 103 attempts"

    reference = LogWriter(tmp_path / "reference.db")  # the same schema; the rows as executemany stores them
    try:
        conn = reference._conn
        conn.execute("BEGIN")
        conn.executemany(_INSERT_REQUEST, [request_row(r, frozenset()) for r in records])
        conn.executemany(_INSERT_ATTEMPT, [row for r in records for row in attempt_rows(r)])
        conn.execute("COMMIT")
        expected = contents(conn)
    finally:
        reference.close()
    assert [tuple(r) for r in got[0]] == [tuple(r) for r in expected[0]]
    assert [tuple(r) for r in got[1]] == [tuple(r) for r in expected[1]]
    assert len(got[0]) == 76 and all(r["host"] == HOST for r in got[0])
    assert next(r for r in got[0] if r["id"] == "req000005")["model"] == "other"


def test_a_bad_row_in_a_group_is_lost_alone(tmp_path: Path) -> None:
    records = batch()
    records[50].agent = None  # NOT NULL: the grouped statement fails, the batch is written again row by row
    writer = LogWriter(tmp_path / "log.db")
    try:
        ok, lost, held = writer._write(records)
        assert (ok, lost, held) == (76, 1, [])
        assert writer._conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 75  # req000005 twice
    finally:
        writer.close()
