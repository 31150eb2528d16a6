"""Read the routing log: recent requests, per-agent / per-model statistics, ratings.

Every function takes a :class:`~modelyard.ledger.store.LogConnection` (SQLite or PostgreSQL) and
speaks the SQL both share: ``?`` placeholders, no SQLite-only functions, times passed in from Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelyard.ledger.aggregate import FAILED_ATTEMPTS, Group, Servers, percentile  # noqa: F401 - percentile re-exported
from modelyard.ledger.store import LogConnection

Row = Any  # sqlite3.Row or ledger.pg.Row: read by column name or position


def recent(conn: LogConnection, limit: int = 20, *, agent: str | None = None, model: str | None = None,
           outcome: str | None = None, since: float | None = None, host: str | None = None) -> list[Row]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("agent", agent), ("model", model), ("outcome", outcome), ("host", host)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
    return conn.execute(sql + " ORDER BY ts DESC LIMIT ?", [*args, limit]).fetchall()


def distinct(conn: LogConnection, column: str) -> list[str]:
    """The values ``column`` (``agent`` or ``model``) takes in the log: what a filter can match."""
    if column not in ("agent", "model", "host"):
        raise ValueError(f"not a filter column: {column}")
    return [r[0] for r in conn.execute(f"SELECT DISTINCT {column} FROM requests WHERE {column} IS NOT NULL")]


def spend_since(conn: LogConnection, starts: Mapping[str, float]) -> dict[str, float]:
    """USD each model's logged attempts cost since its start (epoch s): what spend caps count.

    Per model name, whatever server each attempt went to (``attempts.backend``), unlike ``stats`` and ``report``'s
    tables: a cap bounds money, and a billed model's price does not depend on which endpoint took the request —
    counted per server, the same name on two endpoints (two configs sharing a log, or one moved mid-month) could
    spend its cap twice. A local model logs $0, so a cap on one caps nothing on any server."""
    return {model: float(conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM attempts WHERE model = ? AND ts >= ?",
                                      (model, start)).fetchone()[0])
            for model, start in starts.items()}


def unpriced_requests(conn: LogConnection, ids: list[str],
                      unpriced: Callable[[str | None, float | None, int | None, int | None, bool], bool],
                      billed: Callable[[str | None, str | None, str | None], bool] = lambda *_: False) -> set[str]:
    """Which of the requests ``ids`` had an attempt ``unpriced(provider, cost, tokens in, tokens out, billed)`` says
    is (ledger/cost.py's ``billed_at_zero``: a billed model without a price); ``billed(model, provider, backend)``:
    whether the server the attempt went to bills (``cost.Billing.billed``). One query for the lot."""
    if not ids:
        return set()
    rows = conn.execute("SELECT request_id, model, provider, backend, cost_usd, tokens_in, tokens_out FROM attempts "
                        f"WHERE request_id IN ({', '.join('?' * len(ids))})", ids).fetchall()
    return {r["request_id"] for r in rows
            if unpriced(r["provider"], r["cost_usd"], r["tokens_in"], r["tokens_out"],
                        billed(r["model"], r["provider"], r["backend"]))}


def tried(conn: LogConnection, model: str) -> tuple[int, int]:
    """How many attempts the log has on ``model``, and how many of them failed (:data:`FAILED_ATTEMPTS`)."""
    failed = ", ".join("?" * len(FAILED_ATTEMPTS))
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome IN ({failed}) THEN 1 ELSE 0 END), 0) "
                       "FROM attempts WHERE model = ?", (*FAILED_ATTEMPTS, model)).fetchone()
    return int(row[0]), int(row[1])


def attempts_for(conn: LogConnection, request_id: str) -> list[Row]:
    return conn.execute("SELECT * FROM attempts WHERE request_id = ? ORDER BY seq", (request_id,)).fetchall()


def _by_prefix(conn: LogConnection, id_prefix: str) -> list[Row]:
    """At most two requests whose id starts with ``id_prefix`` (two: it is not unique)."""
    pattern = id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return conn.execute("SELECT * FROM requests WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (pattern,)).fetchall()


def find_request(conn: LogConnection, id_prefix: str) -> Row | None:
    """A request by id or unique id prefix."""
    rows = _by_prefix(conn, id_prefix)
    return rows[0] if len(rows) == 1 else None


def ambiguous(conn: LogConnection, id_prefix: str) -> bool:
    """Does the prefix match several requests (rather than none)?"""
    return len(_by_prefix(conn, id_prefix)) > 1


def rate(conn: LogConnection, id_prefix: str, acceptable: bool) -> str | None:
    """Set the verdict; returns the full id, or None if no single request matches."""
    row = find_request(conn, id_prefix)
    if row is None:
        return None
    conn.execute("UPDATE requests SET acceptable = ?, rated_at = ? WHERE id = ?",
                 (int(acceptable), time.time(), row["id"]))
    return str(row["id"])


#: what :meth:`Group.add` reads: never the prompt and answer texts, most of a row's bytes (the dashboard asks every
#: 2 s for the month so far: ``SELECT *`` read every text of it; 11.6 s against 7.2 s for these columns, 300,000 rows
#: with 3 KB of text each, 2026-11-29 at load 8)
_STATS_COLUMNS = ("agent, model, outcome, fallback_reason, is_local, total_ms, tokens_per_s, queue_wait_ms, tokens_in, "
                  "tokens_out, cost_usd, acceptable, n_attempts")


def stats(conn: LogConnection, since: float | None = None, by: str = "agent", *,
          attempts: bool = False) -> list[Group]:
    """Per agent (``by="agent"``) or per answering model (``by="model"``).

    Per model, spend, tokens and failed attempts are each attempt's model's, as ``report`` counts them: a request's
    whole cost (or tokens) on its answering model put a cloud attempt's spend (one that broke off, then a local answer)
    on a local model, and a model that only failed was not listed at all. A model name the window shows on several
    servers is one group per server (:class:`~modelyard.ledger.aggregate.Servers`; a request goes to its answering
    attempt's server). Per agent, ``attempts`` counts their failed attempts too (an extra read of the attempts: the
    dashboard, which reads the month's agents every few seconds, does without)."""
    if by not in ("agent", "model"):
        raise ValueError("by must be 'agent' or 'model'")
    window = () if since is None else (since,)
    failed = ", ".join("?" * len(FAILED_ATTEMPTS))
    per_attempt = [] if by == "agent" and not attempts else conn.execute(
        f"SELECT a.{by} AS key, " + ("a.backend AS backend, " if by == "model" else "")
        + "COALESCE(SUM(a.cost_usd), 0) AS cost, COALESCE(SUM(a.tokens_in), 0) AS tin, "
        + f"COALESCE(SUM(a.tokens_out), 0) AS tout, SUM(CASE WHEN a.outcome IN ({failed}) THEN 1 ELSE 0 END) AS failed "
        "FROM attempts a JOIN requests r ON r.id = a.request_id" + (" WHERE r.ts >= ?" if since is not None else "")
        + f" GROUP BY a.{by}" + (", a.backend" if by == "model" else ""), (*FAILED_ATTEMPTS, *window)).fetchall()
    servers = Servers.of((a["key"], a["backend"]) for a in per_attempt) if by == "model" else Servers({})
    groups: dict[tuple[str, str | None], Group] = {}
    for row in conn.execute(_stats_sql(servers, since is not None), (*servers.split, *window)):
        key = row[by] or "(none)"
        server = servers.label(row[by], row["answered_on"]) if servers else None
        group = groups.setdefault((key, server), Group(key, server))
        group.add(row, tokens=by == "agent" or not row["n_attempts"])
        if by == "agent" or not row["n_attempts"]:  # a row logged without attempts (an old log) says its own cost
            group.spend += row["cost_usd"] or 0.0
    for a in per_attempt:
        server = servers.label(a["key"], a["backend"]) if by == "model" else None
        if by == "agent" and (a["key"], None) not in groups:  # an agent's attempts are its requests'
            continue
        group = groups.setdefault((a["key"], server), Group(a["key"], server))
        group.failed_attempts += int(a["failed"] or 0)
        if by == "model":
            group.spend += float(a["cost"])
            group.tokens_in += int(a["tin"])
            group.tokens_out += int(a["tout"])
    return by_requests(groups.values())


def by_requests(groups: Iterable[Group]) -> list[Group]:
    """Most requests first; a model's servers side by side (its busiest server's rank), the busier first."""
    found = list(groups)
    top: dict[str, int] = {}
    for g in found:
        top[g.key] = max(top.get(g.key, 0), g.requests)
    return sorted(found, key=lambda g: (-top[g.key], g.key, -g.requests, g.server or ""))


def _stats_sql(servers: Servers, windowed: bool) -> str:
    """:func:`stats`'s read of the requests; with a model on several servers, each of its requests' answering
    attempt's server too (its last: the writer numbers them so; looked up only for those models' requests: one
    primary-key lookup each, SQLite's VM steps for 300,000 requests 6.0M → 11.7M; none without such a model)."""
    where = " WHERE r.ts >= ?" if windowed else ""
    if not servers:
        return f"SELECT {_STATS_COLUMNS} FROM requests r{where}"  # as before: the dashboard's read, every few s
    columns = ", ".join(f"r.{c.strip()}" for c in _STATS_COLUMNS.split(","))
    return (f"SELECT {columns}, a.backend AS answered_on FROM requests r LEFT JOIN attempts a ON a.request_id = r.id "
            f"AND r.model IN ({', '.join('?' * len(servers.split))}) AND a.seq = r.n_attempts - 1 "
            f"AND a.model = r.model{where}")


#: attempts of one model on one server, or logged before the log kept servers (``backend`` NULL: readers say
#: "unknown server"); never another config's model of the same name on another server
ON_BACKEND = "model = ? AND (backend = ? OR backend IS NULL)"


def last_attempt(conn: LogConnection, model: str, backend: str) -> Row | None:
    """The latest attempt that reached the model on ``backend`` (:func:`modelyard.ledger.probes.backend_of`), or one
    logged before servers were kept (its ``backend`` NULL). Skips — cooling down, no key — say nothing new."""
    return conn.execute(f"SELECT ts, outcome, reason, detail, backend FROM attempts WHERE {ON_BACKEND} "
                        "AND outcome != 'skipped' ORDER BY ts DESC LIMIT 1", (model, backend)).fetchone()
