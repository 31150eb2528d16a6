"""Where a batch of routing-log rows is committed: one statement text for SQLite and PostgreSQL.

Rows are upserted (``INSERT … ON CONFLICT … DO UPDATE``, which both databases speak), so writing
a batch twice — a forwarder that died between PostgreSQL's commit and noting its progress — leaves
one row per request, and a rating already given is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.ledger.writer import ATTEMPT_COLUMNS, REQUEST_COLUMNS


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


UPSERT_REQUEST = upsert("requests", REQUEST_COLUMNS, ("id",))
UPSERT_ATTEMPT = upsert("attempts", ATTEMPT_COLUMNS, ("request_id", "seq"))


def write_batch(conn: Any, requests: Sequence[tuple], attempts: Sequence[tuple]) -> None:
    """Commit request and attempt rows in one transaction (rolled back, and raised, on any error)."""
    conn.execute("BEGIN")
    try:
        if requests:
            conn.executemany(UPSERT_REQUEST, requests)
        if attempts:
            conn.executemany(UPSERT_ATTEMPT, attempts)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
