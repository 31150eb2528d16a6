"""Routing decisions are written by the ledger's one writer thread (issue #13.5), with its guarantees.

``agents/decision_log.py`` used to run a thread of its own per log file, with none of the log
writer's repair or accounting: a decision whose text SQLite could not encode was lost silently.
Now a decision is a :class:`Row` in the LogWriter's queue: one thread, one flush, a bad value is
repaired, a row the table refuses is counted, and the writer keeps serving.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from modelyard.agents.classifier import Decision, RouteMethod
from modelyard.agents.decision_log import log_decision
from modelyard.agents.learning import record_correction
from modelyard.ledger import LogWriter, connect
from modelyard.ledger.labels import LabelSource, decision_of
from modelyard.ledger.writer import Row
from modelyard.router.records import Attempt, RequestRecord


def decisions(path: Path) -> list[sqlite3.Row]:
    conn = connect(path, readonly=True)
    try:
        return conn.execute("SELECT request_id, text, agent, method FROM routing_decisions ORDER BY ts").fetchall()
    finally:
        conn.close()


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("modelyard-") and "log" in t.name]


def test_decisions_and_requests_share_one_writer_thread(tmp_path: Path) -> None:
    before = writer_threads()
    writer = LogWriter(tmp_path / "log.sqlite3")
    try:
        writer.submit(RequestRecord(id="req1", agent="engineer", attempts=[Attempt("m", "openai", "ok")]))
        log_decision(writer, Decision("engineer", 0.9, RouteMethod.FAST, 1.2), text="fix my code", request_id="req1")
        assert writer.flush()  # one flush covers both
        assert [tuple(r) for r in decisions(writer.path)] == [("req1", "fix my code", "engineer", "fast")]
        assert writer.written == 2
        assert len(writer_threads()) == len(before) + 1  # the log writer's, and no decision-log thread
        assert "modelyard-decision-log" not in writer_threads()
    finally:
        writer.close()


def test_a_bad_decision_is_repaired_or_counted_and_the_writer_carries_on(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "log.sqlite3")
    try:
        smile = Decision("chat", 0.5, RouteMethod.FAST, 0.4)
        log_decision(writer, smile, text="smile \ud83d", request_id="r1")  # lone surrogate
        writer.submit_row(Row("INSERT INTO routing_decisions (request_id, ts, text, agent, method) "
                              "VALUES (?, ?, ?, ?, ?)", ("r2", 1.0, "x", None, "fast")))  # agent NOT NULL: refused
        log_decision(writer, Decision("writer", 0.8, RouteMethod.MODEL, 900.0), text="a poem", request_id="r3")
        assert writer.flush()
        stored = decisions(writer.path)
        assert [r["request_id"] for r in stored] == ["r1", "r3"]
        assert stored[0]["text"] == "smile \ufffd"  # repaired, not lost
        health = writer.health()
        assert health.alive and health.repaired == 1 and health.lost == 1 and health.written == 2
    finally:
        writer.close()


#: the strings the routing log's ``method`` column has always held (rows of older versions included: ``direct``)
LOGGED = ("fast", "model", "model_repaired", "fast_fallback", "direct")


def test_a_decisions_method_is_an_enum_and_the_log_holds_the_strings_it_always_held(tmp_path: Path) -> None:
    """``Decision.method`` is a :class:`RouteMethod`; what the log writes and a read gives back are the plain strings
    of before, byte for byte (``route --json``: tests/agents/test_cli_agents.py), and an old row's ``direct`` still
    is not learnable."""
    assert [m.value for m in RouteMethod] == list(LOGGED)
    writer = LogWriter(tmp_path / "log.sqlite3")
    try:
        for method in RouteMethod:
            log_decision(writer, Decision("engineer", 0.9, method, 1.0), text=f"text {method}", request_id=method)
        assert writer.flush()
    finally:
        writer.close()
    conn = connect(tmp_path / "log.sqlite3")
    try:
        rows = conn.execute("SELECT request_id, method, typeof(method) FROM routing_decisions ORDER BY rowid")
        assert [tuple(r) for r in rows] == [(v, v, "text") for v in LOGGED]
        for value in LOGGED:
            text, agent, method = decision_of(conn, value) or (None, "", "")
            assert (text, agent, method, type(method)) == (f"text {value}", "engineer", value, str)
            assert RouteMethod(method) is RouteMethod(value)
        targets = ["engineer", "writer"]
        assert not record_correction(conn, "direct", "writer", LabelSource.CLI, targets)  # a person named the agent
        assert record_correction(conn, "model_repaired", "writer", LabelSource.CLI, targets)
    finally:
        conn.close()
