"""A row's outcomes go to SQLite as plain ``str``s (issue #15, round 12): sqlite3 binds a ``str`` subclass (our
StrEnum outcomes) only after asking it for an adapter, ~3,500 instructions per value, twice per request on the writer
thread. What is stored must not change: the same text, stored as text, as binding the enum members did."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.unit.test_ledger import record

from modelyard.errors import Reason
from modelyard.ledger import LogWriter
from modelyard.ledger.writer import _INSERT_ATTEMPT, _INSERT_REQUEST, attempt_rows, request_row
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

OUTCOME = 6  # the requests row's and the attempts row's outcome column


def stored(conn: sqlite3.Connection) -> list[list]:
    return [[tuple(row) for row in conn.execute(f"SELECT {key}, outcome, typeof(outcome), {extra} FROM {table} "
                                                "ORDER BY 1, 4")]
            for table, key, extra in (("requests", "id", "fallback_reason"),
                                      ("attempts", "request_id", "seq || ':' || ifnull(reason, '')"))]


def test_the_outcomes_are_bound_as_plain_strings() -> None:
    r = record(1, outcome=RequestOutcome.FALLBACK)
    assert type(request_row(r, frozenset())[OUTCOME]) is str
    assert [type(row[OUTCOME]) for row in attempt_rows(r)] == [str, str]


def test_what_is_stored_is_what_the_enum_members_stored(tmp_path: Path) -> None:
    records = [record(i, outcome=RequestOutcome.FALLBACK if i % 2 else RequestOutcome.OK) for i in range(6)]
    # a plugin's record with plain strings, and a failed attempt whose reason is an enum member (bound as before)
    records.append(RequestRecord(id="plain", agent="a", outcome="ok", attempts=[  # type: ignore[arg-type]
        Attempt("m", "p", "fallback", Reason.SERVER_ERROR), Attempt("m", "p", AttemptOutcome.OK)]))
    writer = LogWriter(tmp_path / "new.db")
    try:
        assert writer._write(records)[:2] == (7, 0)
        got = stored(writer._conn)
    finally:
        writer.close()
    reference = LogWriter(tmp_path / "reference.db")  # the same schema; the enum members bound as they are
    try:
        conn: sqlite3.Connection = reference._conn
        for r in records:  # as the rows were before: the members themselves
            row = list(request_row(r, frozenset()))
            row[OUTCOME] = r.outcome
            conn.execute(_INSERT_REQUEST, row)
            for a, attempt in zip(r.attempts, attempt_rows(r), strict=True):
                conn.execute(_INSERT_ATTEMPT, (*attempt[:OUTCOME], a.outcome, *attempt[OUTCOME + 1:]))
        want = stored(conn)
    finally:
        reference.close()
    assert got == want
    assert ("plain", "ok", "text", "server_error") in got[0]
    assert all(kind == "text" for _, _, kind, _ in got[0] + got[1])
