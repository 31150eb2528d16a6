"""Read what replay needs from the routing log, a page at a time (a big log never loads whole).

Two passes: the attempts, one model after another, each in time order (to learn each model's
service times and its condition over time), and the requests in time order (the arrivals to
replay). Every page is a range scan of an index (``attempts_model_ts``, ``requests_ts``): a scan
of the attempts in global time order has no index to follow and re-sorted the whole table for
every page (a million-row log took over a minute to read). The SQL is what SQLite and PostgreSQL
share, so a log on either replays (``ledger.store``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelyard.ledger.aggregate import Group
from modelyard.ledger.store import LogConnection
from modelyard.outcomes import RequestOutcome

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
    #: the model that answered at its first attempt, and how long it took: its TTFT (s) and tokens/s. A replay
    #: that sends the request to that model again reproduces them instead of drawing new ones (else a request
    #: sent when the one before it was answered — a hand-off, an agent's next step, a person's next question —
    #: overlapped it whenever the draw made that one slower than it was, and queued where nothing ever queued)
    model: str | None = None
    ttft: float = 0.0
    tokens_per_s: float = 0.0
    #: the part of ``tokens_in`` its first attempt read from / wrote to the provider's prompt cache: a simulated
    #: answer reports them, so the router prices it as the ledger did (Price.cost; +76% of spend without them)
    cache_read: int = 0
    cache_write: int = 0
    #: the part of ``cache_write`` the provider wrote to a one-hour cache (priced 2x input, not 1.25x)
    cache_write_1h: int = 0


def _fetch(conn: LogConnection, sql: str, params: tuple[Any, ...], plain: bool) -> list[Any]:
    """``conn.execute(sql, params).fetchall()``; ``plain``: SQLite's rows as tuples, read by position (making a
    ``sqlite3.Row`` for each of a million rows costs ~0.5 µs apiece)."""
    if plain and isinstance(conn, sqlite3.Connection):
        cursor = conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()
    return conn.execute(sql, params).fetchall()


def _pages(conn: LogConnection, sql: tuple[str, str], start: float, end: float, plain: bool = False
           ) -> Iterator[Any]:
    """Rows for start ≤ ts < end in (ts, id) order, fetched by keyset pages (no OFFSET). Each page is a
    range scan of the ts index from the last page's ts, stopped by the LIMIT: the tie-break on id is a
    filter, not part of the range (written as ``ts > ? OR (ts = ? AND id > ?)`` it made SQLite scan and
    sort the whole rest of the window for every page). ``sql``: (first page, later pages), each selecting
    ``id`` and ``ts`` first; ``plain``: rows read by position only."""
    rows = _fetch(conn, sql[0], (start, end, PAGE), plain)
    while True:
        yield from rows
        if len(rows) < PAGE:
            return
        rid, ts = rows[-1][0], rows[-1][1]
        rows = _fetch(conn, sql[1], (ts, ts, rid, end, PAGE), plain)


def _query(columns: str, table: str) -> tuple[str, str]:
    """(first page, later pages) of one keyset-paged scan in (ts, id) order."""
    tail = " AND ts < ? ORDER BY ts, id LIMIT ?"
    return (f"SELECT {columns} FROM {table} WHERE ts >= ?{tail}",
            f"SELECT {columns} FROM {table} WHERE ts >= ? AND (ts > ? OR id > ?){tail}")


#: a column of the request's first attempt that reached a model (the one whose ``tokens_in`` is the arrival's), or
#: the default given after it
_FIRST = ("COALESCE((SELECT a.{} FROM attempts a WHERE a.request_id = r.id AND a.outcome <> 'skipped'"
          " ORDER BY a.seq LIMIT 1), {})")
#: the request's first prompt size (its first attempt that reached a model) and the answer's length (its
#: last answered attempt), looked up in ``attempts`` only for a request that made more than one attempt:
#: a one-attempt request's own row says both (its totals are that attempt's), and a lookup per row was
#: most of the time a replay spent reading the log
_ARRIVAL_COLUMNS = (
    "r.id, r.ts, r.agent, r.outcome, r.model,"
    f" CASE WHEN r.n_attempts = 1 THEN r.tokens_in ELSE {_FIRST.format('tokens_in', 'r.tokens_in')} END AS first_in,"
    " CASE WHEN r.n_attempts = 1 AND r.outcome = 'ok' THEN r.tokens_out ELSE"
    " COALESCE((SELECT a.tokens_out FROM attempts a WHERE a.request_id = r.id AND a.outcome = 'ok'"
    "           ORDER BY a.seq DESC LIMIT 1), 0) END AS answer_out,"
    " CASE WHEN r.n_attempts = 1 AND r.outcome = 'ok' THEN r.ttft_ms - COALESCE(r.queue_wait_ms, 0) END AS own_ttft,"
    " CASE WHEN r.n_attempts = 1 AND r.outcome = 'ok' THEN r.tokens_per_s END AS own_tps,"
    # looked up only for a request that cost something: only a priced model's cache changes a figure
    f" CASE WHEN r.cost_usd > 0 THEN {_FIRST.format('cache_read_tokens', 0)} ELSE 0 END AS cache_read,"
    f" CASE WHEN r.cost_usd > 0 THEN {_FIRST.format('cache_write_tokens', 0)} ELSE 0 END AS cache_write,"
    f" CASE WHEN r.cost_usd > 0 THEN {_FIRST.format('cache_write_1h_tokens', 0)} ELSE 0 END AS cache_write_1h")
_ARRIVALS = _query(_ARRIVAL_COLUMNS, "requests r")
#: what ``report`` counts of each row (for the replay checked against the log), in the same order
_REPORTED = _query("id, ts, outcome, model, tokens_in, tokens_out, fallback_reason, is_local, total_ms, tokens_per_s,"
                   " queue_wait_ms, acceptable, cost_usd", "requests")

#: the columns of an attempt row, in this order (:meth:`Profiler.add_page` reads them by position)
ATTEMPT_COLUMNS = ("ts", "agent", "outcome", "reason", "ttft_ms", "duration_ms", "tokens_in", "tokens_out",
                   "tokens_per_s", "request_id", "seq")
_ATTEMPT_COLUMNS = ", ".join(ATTEMPT_COLUMNS)
_REQUEST_ID, _SEQ = ATTEMPT_COLUMNS.index("request_id"), ATTEMPT_COLUMNS.index("seq")
_ATTEMPT_ORDER = " AND ts < ? ORDER BY ts, request_id, seq LIMIT ?"
#: one model's attempts by keyset pages over (model, ts): the range on ts follows the index, the tie-break
#: on (request_id, seq) within the page's first timestamp is a filter
_MODEL_ATTEMPTS = (
    f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE model = ? AND ts >= ?{_ATTEMPT_ORDER}",
    f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE model = ? AND ts >= ?"
    f" AND (ts > ? OR request_id > ? OR (request_id = ? AND seq > ?)){_ATTEMPT_ORDER}")


_ANSWERED = frozenset(o.value for o in RequestOutcome if o.answered)


def arrivals(conn: LogConnection, start: float, end: float) -> Iterator[Arrival]:
    """The logged requests in time order."""
    for row in _pages(conn, _ARRIVALS, start, end, plain=True):
        # by position
        rid, ts, agent, outcome, model, first_in, answer_out, own_ttft, own_tps, cached, wrote, hour = row
        answered = outcome in _ANSWERED and model is not None
        own = own_ttft is not None and own_ttft > 0
        yield Arrival(rid, ts, agent, int(first_in or 0), int(answer_out or 0) if answered else 0, answered,
                      model if own else None, own_ttft / 1000 if own else 0.0, float(own_tps or 0.0) if own else 0.0,
                      int(cached or 0), int(wrote or 0), int(hour or 0))


def measure(conn: LogConnection, start: float, end: float) -> Group:
    """The requests in the window counted as ``report`` counts them (same Group, same definitions), to check
    the replay against. A pass of its own, not part of reading the arrivals: it needs no profile, so it runs
    beside the fit, on the core that would otherwise wait for it."""
    measured = Group("all")
    for row in _pages(conn, _REPORTED, start, end):
        measured.add(row)
        measured.spend += row["cost_usd"] or 0.0
    return measured


def models(conn: LogConnection) -> list[str]:
    """Every model the attempts name, one index lookup each (a loose index scan of ``attempts_model_ts``)."""
    out: list[str] = []
    row = conn.execute("SELECT MIN(model) AS m FROM attempts").fetchone()
    while row is not None and row["m"] is not None:
        out.append(row["m"])
        row = conn.execute("SELECT MIN(model) AS m FROM attempts WHERE model > ?", (row["m"],)).fetchone()
    return out


def _model_pages(conn: LogConnection, model: str, start: float, end: float) -> Iterator[list[Any]]:
    """One model's attempts with start ≤ ts < end in (ts, request_id, seq) order, a page at a time."""
    rows = _fetch(conn, _MODEL_ATTEMPTS[0], (model, start, end, PAGE), True)
    while True:
        if rows:
            yield rows
        if len(rows) < PAGE:
            return
        last = rows[-1]
        ts, rid, seq = last[0], last[_REQUEST_ID], last[_SEQ]
        rows = _fetch(conn, _MODEL_ATTEMPTS[1], (model, ts, ts, rid, rid, seq, end, PAGE), True)


def attempt_pages(conn: LogConnection, start: float, end: float) -> Iterator[tuple[str, list[Any]]]:
    """The logged attempts as (model, page of rows): model by model (in name order), each model's in time
    order; a row's columns are :data:`ATTEMPT_COLUMNS`. Pages, not row objects: a replay reads a million."""
    for model in models(conn):
        for page in _model_pages(conn, model, start, end):
            yield model, page


def bounds(conn: LogConnection, start: float, end: float) -> tuple[float | None, float | None]:
    """(first ts, last ts) of the requests in the window, (None, None) when it has none: two index seeks
    (a COUNT would scan the whole window's index before anything else could start; the request count
    comes from :func:`measure`, which reads every row anyway)."""
    first = conn.execute("SELECT MIN(ts) AS t FROM requests WHERE ts >= ? AND ts < ?", (start, end)).fetchone()
    last = conn.execute("SELECT MAX(ts) AS t FROM requests WHERE ts >= ? AND ts < ?", (start, end)).fetchone()
    return first["t"], last["t"]
