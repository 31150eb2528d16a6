"""Read what replay needs from the routing log, a page at a time (a big log never loads whole).

Two passes, both in time order: the attempts (to learn each model's service times and its
condition over time) and the requests (the arrivals to replay).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.ledger.aggregate import Group

PAGE = 5000


@dataclass(slots=True)
class Arrival:
    """One logged request, as much of it as a replay needs."""

    id: str
    ts: float
    agent: str
    tokens_in: int
    #: output tokens of the answer that was delivered (0 when none was): the length to reproduce
    tokens_out: int
    answered: bool


@dataclass(slots=True)
class LoggedAttempt:
    ts: float
    agent: str
    model: str
    outcome: str
    reason: str | None
    queue_wait_ms: float | None
    ttft_ms: float | None
    duration_ms: float | None
    tokens_in: int
    tokens_out: int
    tokens_per_s: float | None


def _pages(conn: sqlite3.Connection, sql: str, start: float, end: float) -> Iterator[sqlite3.Row]:
    """Rows of ``sql`` (ordered by ts, rowid) for start ≤ ts < end, fetched by keyset pages."""
    after_ts, after_row = start, -1
    while True:
        rows = conn.execute(sql, (after_ts, after_ts, after_row, end, PAGE)).fetchall()
        yield from rows
        if len(rows) < PAGE:
            return
        after_ts, after_row = rows[-1]["ts"], rows[-1]["rid"]


_ARRIVALS = (
    "SELECT r.rowid AS rid, r.id, r.ts, r.agent, r.outcome, r.model, r.tokens_in, r.tokens_out, r.fallback_reason,"
    " r.is_local, r.total_ms, r.tokens_per_s, r.queue_wait_ms, r.acceptable, r.cost_usd,"
    " COALESCE((SELECT a.tokens_in FROM attempts a WHERE a.request_id = r.id AND a.outcome NOT IN ('skipped')"
    "           ORDER BY a.seq LIMIT 1), r.tokens_in) AS first_in,"
    " COALESCE((SELECT a.tokens_out FROM attempts a WHERE a.request_id = r.id AND a.outcome = 'ok'"
    "           ORDER BY a.seq DESC LIMIT 1), 0) AS answer_out"
    " FROM requests r WHERE (r.ts > ? OR (r.ts = ? AND r.rowid > ?)) AND r.ts < ?"
    " ORDER BY r.ts, r.rowid LIMIT ?"
)

_ATTEMPTS = (
    "SELECT rowid AS rid, ts, agent, model, outcome, reason, queue_wait_ms, ttft_ms, duration_ms, tokens_in,"
    " tokens_out, tokens_per_s FROM attempts"
    " WHERE (ts > ? OR (ts = ? AND rowid > ?)) AND ts < ? ORDER BY ts, rowid LIMIT ?"
)


def arrivals(conn: sqlite3.Connection, start: float, end: float, measured: Group | None = None
             ) -> Iterator[Arrival]:
    """The logged requests in time order; ``measured`` also counts each row as ``report`` does (same
    Group, same definitions), so the replay can be checked against the log in the same pass."""
    for row in _pages(conn, _ARRIVALS, start, end):
        if measured is not None:
            measured.add(row)
            measured.spend += row["cost_usd"] or 0.0
        answered = row["outcome"] in ("ok", "fallback") and row["model"] is not None
        yield Arrival(row["id"], row["ts"], row["agent"], int(row["first_in"] or 0),
                      int(row["answer_out"] or 0) if answered else 0, answered)


def attempts(conn: sqlite3.Connection, start: float, end: float) -> Iterator[LoggedAttempt]:
    for row in _pages(conn, _ATTEMPTS, start, end):
        yield LoggedAttempt(row["ts"], row["agent"], row["model"], row["outcome"], row["reason"],
                            row["queue_wait_ms"], row["ttft_ms"], row["duration_ms"], int(row["tokens_in"] or 0),
                            int(row["tokens_out"] or 0), row["tokens_per_s"])


def span(conn: sqlite3.Connection, start: float, end: float) -> tuple[int, float | None, float | None]:
    """(requests, first ts, last ts) in the window."""
    row = conn.execute("SELECT COUNT(*) AS n, MIN(ts) AS lo, MAX(ts) AS hi FROM requests WHERE ts >= ? AND ts < ?",
                       (start, end)).fetchone()
    return int(row["n"]), row["lo"], row["hi"]
