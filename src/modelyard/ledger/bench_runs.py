"""The bench's rows in the routing log (``bench_runs``): one per task run, written as each run finishes.

``modelyard bench`` writes them; ``report`` cites the latest figures per model and agent, and
``replay`` can take service times (TTFT, total, tokens) from them for models that have no
production traffic yet. Rows are plain mappings so this module knows nothing of the bench's types.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from modelyard.ledger.store import LogConnection

COLUMNS = ("run_id", "ts", "suite", "agent", "task", "model", "provider", "is_local", "rep", "k", "concurrency",
           "passed", "judged", "checks", "outcome", "reason", "error", "retries", "retry_reasons", "tool_use",
           "ttft_ms", "total_ms", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd", "answer")
_INSERT = (f"INSERT OR REPLACE INTO bench_runs ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in COLUMNS)})")


def save_run(conn: sqlite3.Connection, row: Mapping[str, Any]) -> None:
    """Insert one run at once (autocommit): an interrupted bench keeps every run that finished."""
    conn.execute(_INSERT, [row.get(c) for c in COLUMNS])


def latest_run_id(conn: LogConnection) -> str | None:
    found = conn.execute("SELECT run_id FROM bench_runs ORDER BY ts DESC LIMIT 1").fetchone()
    return str(found[0]) if found else None


def runs(conn: LogConnection, run_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM bench_runs WHERE run_id = ? ORDER BY ts", (run_id,)).fetchall()


def service_times(conn: LogConnection, model: str, limit: int = 1000) -> list[sqlite3.Row]:
    """The most recent answered runs of one model (ttft_ms, total_ms, tokens_in, tokens_out, tokens_per_s), for
    replay."""
    return conn.execute(
        "SELECT ttft_ms, total_ms, tokens_in, tokens_out, tokens_per_s FROM bench_runs "
        "WHERE model = ? AND outcome = 'ok' ORDER BY ts DESC LIMIT ?", (model, limit)).fetchall()


def pass_counts(conn: LogConnection, run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(agent, model) -> (passed runs, runs) in one bench."""
    rows = conn.execute("SELECT agent, model, sum(passed), count(*) FROM bench_runs WHERE run_id = ? "
                        "GROUP BY agent, model", (run_id,)).fetchall()
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


def run_info(conn: LogConnection, run_id: str) -> tuple[str, float] | None:
    """(suite, time of the last run) of one bench."""
    row = conn.execute("SELECT suite, max(ts) FROM bench_runs WHERE run_id = ?", (run_id,)).fetchone()
    return (str(row[0]), float(row[1])) if row and row[0] is not None else None
