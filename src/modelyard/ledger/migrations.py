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
    # 2: conversation history for chat front-ends (Telegram, `modelyard chat`)
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        frontend TEXT NOT NULL,
        external_id TEXT NOT NULL,
        agent TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX conversations_external ON conversations(frontend, external_id);
    CREATE TABLE turns (
        conversation_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        agent TEXT,
        model TEXT,
        request_id TEXT,
        tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conversation_id, seq)
    );
    CREATE TABLE message_requests (
        frontend TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (frontend, chat_id, message_id)
    );
    CREATE TABLE routing_decisions (
        request_id TEXT,
        ts REAL NOT NULL,
        text TEXT,
        agent TEXT NOT NULL,
        method TEXT NOT NULL,
        confidence REAL,
        ms REAL
    );
    CREATE INDEX routing_decisions_ts ON routing_decisions(ts);
    """,
    # 3: model probe results (`modelyard probe`, used by `modelyard check`)
    """
    CREATE TABLE probes (
        ts REAL NOT NULL,
        model TEXT NOT NULL,
        check_name TEXT NOT NULL,
        ok INTEGER,
        value REAL,
        detail TEXT
    );
    CREATE INDEX probes_model_ts ON probes(model, ts);
    """,
    # 4: model-selection bench results (`modelyard bench`), one row per task run, written as runs finish
    """
    CREATE TABLE bench_runs (
        run_id TEXT NOT NULL,
        ts REAL NOT NULL,
        suite TEXT NOT NULL,
        agent TEXT NOT NULL,
        task TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        is_local INTEGER NOT NULL,
        rep INTEGER NOT NULL,
        k INTEGER NOT NULL,
        concurrency INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        judged INTEGER NOT NULL DEFAULT 0,
        checks TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        error TEXT,
        retries INTEGER NOT NULL DEFAULT 0,
        retry_reasons TEXT,
        tool_use TEXT,
        ttft_ms REAL,
        total_ms REAL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        tokens_per_s REAL,
        cost_usd REAL NOT NULL DEFAULT 0,
        answer TEXT,
        PRIMARY KEY (run_id, agent, task, model, rep)
    );
    CREATE INDEX bench_runs_model_ts ON bench_runs(model, ts);
    """,
]
