"""Read the routing log: recent requests, per-agent / per-model statistics, ratings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def recent(conn: sqlite3.Connection, limit: int = 20, *, agent: str | None = None, model: str | None = None,
           outcome: str | None = None, since: float | None = None) -> list[sqlite3.Row]:
    where, args = [], []
    for column, value in (("agent", agent), ("model", model), ("outcome", outcome)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
    return conn.execute(sql + " ORDER BY ts DESC LIMIT ?", [*args, limit]).fetchall()


def attempts_for(conn: sqlite3.Connection, request_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM attempts WHERE request_id = ? ORDER BY seq", (request_id,)).fetchall()


def find_request(conn: sqlite3.Connection, id_prefix: str) -> sqlite3.Row | None:
    """A request by id or unique id prefix."""
    rows = conn.execute("SELECT * FROM requests WHERE id LIKE ? || '%' LIMIT 2", (id_prefix,)).fetchall()
    return rows[0] if len(rows) == 1 else None


def rate(conn: sqlite3.Connection, id_prefix: str, acceptable: bool) -> str | None:
    """Set the verdict; returns the full id, or None if no single request matches."""
    row = find_request(conn, id_prefix)
    if row is None:
        return None
    conn.execute("UPDATE requests SET acceptable = ?, rated_at = strftime('%s','now') WHERE id = ?",
                 (int(acceptable), row["id"]))
    return str(row["id"])


@dataclass
class GroupStats:
    key: str
    requests: int = 0
    failed: int = 0
    fell_back: int = 0
    local: int = 0
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    tps: list[float] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    rated: int = 0
    acceptable: int = 0

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies, 95)

    @property
    def fallback_rate(self) -> float:
        return self.fell_back / self.requests if self.requests else 0.0

    @property
    def local_share(self) -> float:
        served = self.requests - self.failed
        return self.local / served if served else 0.0

    @property
    def tokens_per_s(self) -> float | None:
        return percentile(self.tps, 50)


def stats(conn: sqlite3.Connection, since: float | None = None, by: str = "agent") -> list[GroupStats]:
    """Per agent (``by="agent"``) or per answering model (``by="model"``)."""
    if by not in ("agent", "model"):
        raise ValueError("by must be 'agent' or 'model'")
    sql = ("SELECT agent, model, outcome, is_local, total_ms, queue_wait_ms, tokens_per_s, tokens_in, tokens_out,"
           " cost_usd, acceptable FROM requests" + (" WHERE ts >= ?" if since is not None else ""))
    groups: dict[str, GroupStats] = {}
    for row in conn.execute(sql, () if since is None else (since,)):
        key = row[by] or "(none)"
        g = groups.setdefault(key, GroupStats(key))
        g.requests += 1
        if row["outcome"] in ("failed", "cancelled", "interrupted"):
            g.failed += 1
        else:
            g.latencies.append(row["total_ms"] or 0.0)
        if row["outcome"] == "fallback":
            g.fell_back += 1
        g.local += int(row["is_local"] or 0)
        g.waits.append(row["queue_wait_ms"] or 0.0)
        if row["tokens_per_s"]:
            g.tps.append(row["tokens_per_s"])
        g.tokens_in += row["tokens_in"] or 0
        g.tokens_out += row["tokens_out"] or 0
        g.cost += row["cost_usd"] or 0.0
        if row["acceptable"] is not None:
            g.rated += 1
            g.acceptable += int(row["acceptable"])
    return sorted(groups.values(), key=lambda g: -g.requests)
