"""Probe results in the routing log's ``probes`` table (one row per check, same ``ts`` per run).

The ``detail`` column holds ``{"status": ..., "detail": ...}`` as JSON so the distinct verdicts
(pass / fail / text-only / n/a …) survive the round trip, not just the ok flag.
"""

from __future__ import annotations

import json
import sqlite3

from modelyard.config.schema import Config
from modelyard.ledger import probes
from modelyard.ops.probe import Check, ProbeResult


def save(conn: sqlite3.Connection, results: list[ProbeResult]) -> None:
    rows = [(r.ts, r.model, c.name, None if c.ok is None else int(c.ok), c.value,
             json.dumps({"status": c.status, "detail": c.detail, "provider": r.provider, "error": c.error,
                         "backend": r.backend}))
            for r in results for c in r.checks.values()]
    conn.execute("BEGIN")
    try:
        conn.executemany("INSERT INTO probes (ts, model, check_name, ok, value, detail) VALUES (?, ?, ?, ?, ?, ?)",
                         rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def measured_here(results: dict[str, ProbeResult], config: Config) -> dict[str, ProbeResult]:
    """The results measured on the backend each model names in ``config`` now (or that did not keep one): another
    config's ``qwen`` on another server, sharing the log file, is not this one's."""
    from modelyard.providers import build_provider

    return {m: r for m, r in results.items() if m in config.models
            and (not r.backend or r.backend == probes.backend_of(build_provider(m, config.models[m])))}


def latest(conn: sqlite3.Connection, models: list[str] | None = None) -> dict[str, ProbeResult]:
    """The most recent probe run of each model (all its checks share that run's ``ts``)."""
    out: dict[str, ProbeResult] = {}
    for row in probes.latest(conn):
        if models is not None and row.model not in models:
            continue
        result = out.setdefault(row.model, ProbeResult(row.model, row.provider, ts=row.ts, backend=row.backend))
        result.add(Check(row.check, row.status, row.ok, row.value, row.detail,  # type: ignore[arg-type]
                         row.error))
    return out
