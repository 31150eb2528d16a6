"""The routing log's schema, as named steps applied in order, once each, on SQLite and PostgreSQL.

How to add a step: append a function here named ``mNNN_what_it_does`` (the next number),
decorated with ``@migration``. It receives a :class:`~modelyard.ledger.migrator.Schema`:
``db.execute(sql)`` runs one statement — write DDL in the common subset (TEXT, INTEGER, REAL,
PRIMARY KEY, CREATE INDEX; PostgreSQL gets BIGINT and DOUBLE PRECISION); ``db.columns(table)``
and ``db.dialect`` let a step look before it acts; any Python is fine (backfill a column, copy
rows). A step for one backend only says so: ``@migration(only=Dialect.SQLITE)``. The runner wraps
each step in one transaction with the row recording it. Never rename, reorder or edit a step once
it is on main: its name is what every database remembers. Tests: tests/unit/test_migrations.py.
"""

from __future__ import annotations

from modelyard.ledger.migrator import Dialect, Migration, Schema, registrar

MIGRATIONS: list[Migration] = []
migration = registrar(MIGRATIONS)


@migration
def m001_requests_and_attempts(db: Schema) -> None:
    db.execute("""
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
    )""")
    db.execute("CREATE INDEX requests_ts ON requests(ts)")
    db.execute("CREATE INDEX requests_agent_ts ON requests(agent, ts)")
    db.execute("CREATE INDEX requests_model_ts ON requests(model, ts)")
    db.execute("""
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
    )""")
    db.execute("CREATE INDEX attempts_model_ts ON attempts(model, ts)")


@migration
def m002_conversations_and_routing_decisions(db: Schema) -> None:
    """Conversation history for chat front-ends (Telegram, ``modelyard chat``) and the orchestrator's decisions."""
    db.execute("""
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        frontend TEXT NOT NULL,
        external_id TEXT NOT NULL,
        agent TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""")
    db.execute("CREATE UNIQUE INDEX conversations_external ON conversations(frontend, external_id)")
    db.execute("""
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
    )""")
    db.execute("""
    CREATE TABLE message_requests (
        frontend TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (frontend, chat_id, message_id)
    )""")
    db.execute("""
    CREATE TABLE routing_decisions (
        request_id TEXT,
        ts REAL NOT NULL,
        text TEXT,
        agent TEXT NOT NULL,
        method TEXT NOT NULL,
        confidence REAL,
        ms REAL
    )""")
    db.execute("CREATE INDEX routing_decisions_ts ON routing_decisions(ts)")


@migration
def m003_probes(db: Schema) -> None:
    """Model probe results (``modelyard probe``, used by ``modelyard check``)."""
    db.execute("""
    CREATE TABLE probes (
        ts REAL NOT NULL,
        model TEXT NOT NULL,
        check_name TEXT NOT NULL,
        ok INTEGER,
        value REAL,
        detail TEXT
    )""")
    db.execute("CREATE INDEX probes_model_ts ON probes(model, ts)")


@migration
def m004_bench_runs(db: Schema) -> None:
    """Model-selection bench results (``modelyard bench``), one row per task run, written as runs finish."""
    db.execute("""
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
    )""")
    db.execute("CREATE INDEX bench_runs_model_ts ON bench_runs(model, ts)")


@migration(only=Dialect.SQLITE)
def m005_spool_outbox(db: Schema) -> None:
    """With ``log.url``, the SQLite file is this host's spool: request ids waiting to reach PostgreSQL
    (filled by triggers the forwarder installs, emptied as it forwards; see ledger/forward.py)."""
    db.execute("CREATE TABLE _outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL)")


@migration(only=Dialect.SQLITE)
def m006_routing_labels(db: Schema) -> None:
    """Routing corrections as labels (``/agent X`` after a routed turn, ratings, ``route --label``) and
    each ``modelyard routing learn`` run (which labels the fast path trusts, and why). Kept in this
    host's SQLite file, beside the routing decisions they correct (see ledger/labels.py)."""
    db.execute("""
    CREATE TABLE routing_labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        text TEXT NOT NULL,
        agent TEXT NOT NULL,
        source TEXT NOT NULL,
        request_id TEXT,
        previous TEXT
    )""")
    db.execute("CREATE INDEX routing_labels_request ON routing_labels(request_id)")
    db.execute("""
    CREATE TABLE routing_fits (
        ts REAL NOT NULL,
        upto_label INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        before REAL,
        after REAL,
        n_labels INTEGER NOT NULL,
        detail TEXT
    )""")


@migration
def m007_finish_reason(db: Schema) -> None:
    """Why each answer ended, as the provider said: ``length`` marks an answer cut off at its
    ``max_tokens`` (shown in the route line and ``modelyard log``), so a truncation is never silent."""
    db.execute("ALTER TABLE requests ADD COLUMN finish_reason TEXT")


@migration(only=Dialect.POSTGRES)
def m008_shared_routing_labels(db: Schema) -> None:
    """With ``log.url``, routing labels are the team's: every host's corrections reach PostgreSQL, and
    ``routing learn`` there decides which of them every host's fast path trusts. ``origin`` names a label
    across hosts (its request, or host + spool + local id), so forwarding it again changes nothing."""
    db.execute("""
    CREATE TABLE routing_labels (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin TEXT NOT NULL UNIQUE,
        ts REAL NOT NULL,
        text TEXT NOT NULL,
        agent TEXT NOT NULL,
        source TEXT NOT NULL,
        request_id TEXT,
        previous TEXT
    )""")
    db.execute("""
    CREATE TABLE routing_fits (
        ts REAL NOT NULL,
        upto_label INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        before REAL,
        after REAL,
        n_labels INTEGER NOT NULL,
        detail TEXT
    )""")


@migration(only=Dialect.SQLITE)
def m009_label_spool(db: Schema) -> None:
    """The spool side of shared labels: ``_label_outbox`` lists this host's labels on their way to
    PostgreSQL (filled by a trigger the forwarder installs), ``team_labels`` is the copy of the labels the
    team's last accepted ``routing learn`` trusts, which the fast path trains on without waiting for the
    database (the forwarder refreshes it)."""
    db.execute("CREATE TABLE _label_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, label_id INTEGER NOT NULL)")
    db.execute("CREATE TABLE team_labels (id INTEGER PRIMARY KEY, text TEXT NOT NULL, agent TEXT NOT NULL, "
               "source TEXT NOT NULL)")


@migration
def m010_request_host(db: Schema) -> None:
    """Which host answered: with ``log.url`` every host's rows are in one table, and a team looking at a slow or
    failing request needs to know which machine served it (NULL for rows from before)."""
    db.execute("ALTER TABLE requests ADD COLUMN host TEXT")


@migration(only=Dialect.SQLITE)
def m011_telegram_inbox(db: Schema) -> None:
    """Telegram updates taken from getUpdates, kept until answered (frontends/telegram_inbox.py): Telegram forgets
    an update once the next getUpdates passes a higher offset, so a bot killed mid-answer lost the message. One
    host polls one token; the rows are this host's, never shared."""
    db.execute("""
    CREATE TABLE telegram_inbox (
        bot_id TEXT NOT NULL,
        update_id INTEGER NOT NULL,
        received REAL NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        message_ids TEXT,
        answer TEXT,
        PRIMARY KEY (bot_id, update_id)
    )""")


@migration
def m012_attempt_backend(db: Schema) -> None:
    """Which server each attempt went to (:func:`modelyard.ledger.probes.backend_of`: provider, endpoint, model id):
    every config on a machine without ``log.path`` shares one log, and a ``qwen3.5`` on a laptop's Ollama is not the
    ``qwen3.5`` of a team host's — ``check`` and ``models`` blamed one's 404s and timeouts on the other. NULL in rows
    from before: their server is unknown, and readers say so instead of blaming the current one."""
    db.execute("ALTER TABLE attempts ADD COLUMN backend TEXT")


@migration
def m013_request_kind(db: Schema) -> None:
    """What each request asked for: NULL for an answer (every row from before), ``embeddings`` for vectors
    (``/v1/embeddings``, ``/api/embed``) — which have no output tokens, no tokens/s and no text to rate, so ``log``
    shows them and readers can tell them from answers."""
    db.execute("ALTER TABLE requests ADD COLUMN kind TEXT")


@migration(only=Dialect.SQLITE)
def m014_requests_without_agent_and_model_indexes(db: Schema) -> None:
    """Every index of ``requests`` is one more page written, and one more write-ahead frame (two ``pwrite``s), in
    every commit — and a lone request's row is committed before its answer is reported (issue #15, round 29: ~9.6
    frames a row, ~1.2 of them each index). ``requests(agent, ts)`` and ``requests(model, ts)`` served only ``log
    --agent``/``--model`` (and the list of names shown when one is unknown), which read the ``ts`` index newest first
    without them: the same rows, in milliseconds while the name is among the recent rows; a name in none of them is a
    whole scan, as ``log --host`` always was (~0.9 s on a 200,000-row, 830 MB log). ``report``, ``stats``, the
    dashboard, ``replay`` and retention read by ``ts`` or scan anyway. PostgreSQL's log keeps them: its rows arrive in
    the forwarder's batches, off any answer's path."""
    db.execute("DROP INDEX IF EXISTS requests_agent_ts")
    db.execute("DROP INDEX IF EXISTS requests_model_ts")


@migration
def m015_attempt_cache_tokens(db: Schema) -> None:
    """How much of each attempt's prompt (``tokens_in``, which counts it) the provider read from its prompt cache and
    wrote to it (:class:`modelyard.types.Usage`): priced apart (:meth:`modelyard.config.schema.Price.cost`), so a
    reader re-pricing the tokens — ``replay`` — priced a cached prompt at the list input price without them (+76% of
    spend on cached traffic). 0 in rows from before: unknown, as those were priced."""
    db.execute("ALTER TABLE attempts ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE attempts ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0")


@migration
def m016_attempt_one_hour_cache_writes(db: Schema) -> None:
    """The part of each attempt's ``cache_write_tokens`` written to a one-hour prompt cache (Anthropic's
    ``usage.cache_creation.ephemeral_1h_input_tokens``): billed at 2x the input price, a five-minute write at 1.25x
    (:meth:`modelyard.config.schema.Price.cost`), so ``replay``, re-pricing the tokens, needs it to price them as the
    router did. 0 in rows from before: those were priced as five-minute writes."""
    db.execute("ALTER TABLE attempts ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0")
