"""Schema migrations for the routing log, applied in order and tracked by ``PRAGMA user_version``.

Append new steps; never edit a released one. Each step runs in one transaction.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: requests and their attempts
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        parent_id TEXT,
        ts REAL NOT NULL,
        agent TEXT NOT NULL,
        model TEXT,
        is_local INTEGER,
        outcome TEXT NOT NULL,
        fallback_reason TEXT,
        n_attempts INTEGER NOT NULL DEFAULT 0,
        queue_wait_ms REAL,
        ttft_ms REAL,
        total_ms REAL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        tokens_per_s REAL,
        cost_usd REAL NOT NULL DEFAULT 0,
        prompt TEXT,
        response TEXT,
        thinking TEXT,
        error TEXT,
        acceptable INTEGER,
        rated_at REAL
    );
    CREATE INDEX requests_ts ON requests(ts);
    CREATE INDEX requests_agent_ts ON requests(agent, ts);
    CREATE INDEX requests_model_ts ON requests(model, ts);
    CREATE TABLE attempts (
        request_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        agent TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        detail TEXT,
        queue_wait_ms REAL,
        ttft_ms REAL,
        duration_ms REAL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        tokens_per_s REAL,
        cost_usd REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (request_id, seq)
    );
    CREATE INDEX attempts_model_ts ON attempts(model, ts);
    """,
]
