"""Committing a batch of routing-log rows: one statement text for SQLite and PostgreSQL.

Rows are upserted (``INSERT … ON CONFLICT … DO UPDATE``, which both databases speak), so writing
a batch twice — a forwarder that died between PostgreSQL's commit and noting its progress — leaves
one row per request; a rating already given is never replaced by a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.ledger.writer import ATTEMPT_COLUMNS, REQUEST_COLUMNS

#: what a verdict adds to a request row after it was written (``rate``, Telegram's 👍/👎)
RATING_COLUMNS = ("acceptable", "rated_at")
FORWARDED_REQUEST_COLUMNS = (*REQUEST_COLUMNS, *RATING_COLUMNS)


def upsert(table: str, columns: Sequence[str], key: Sequence[str], keep: Sequence[str] = ()) -> str:
    """Insert, or update every non-key column; a ``keep`` column is only overwritten by a non-null value."""
    updates = ", ".join(f"{c} = COALESCE(excluded.{c}, {table}.{c})" if c in keep else f"{c} = excluded.{c}"
                        for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


UPSERT_REQUEST = upsert("requests", FORWARDED_REQUEST_COLUMNS, ("id",), keep=RATING_COLUMNS)
UPSERT_ATTEMPT = upsert("attempts", ATTEMPT_COLUMNS, ("request_id", "seq"))


def write_batch(conn: Any, requests: Sequence[Sequence[Any]],
                attempts: Sequence[Sequence[Any]]) -> tuple[int, int]:
    """Commit request rows (:data:`FORWARDED_REQUEST_COLUMNS`, or without the ratings: they are padded)
    and attempt rows in one transaction; rolled back, and raised, on any error. Returns how many request rows and how
    many attempt rows the database said it inserted or updated (-1: it did not say): fewer than sent means something
    on the table discarded the rest without an error — a ``BEFORE INSERT`` trigger that returns NULL."""
    width = len(FORWARDED_REQUEST_COLUMNS)
    requests = [tuple(r) + (None,) * (width - len(r)) for r in requests]
    said = said_attempts = 0
    conn.execute("BEGIN")
    try:
        if requests:
            said = conn.executemany(UPSERT_REQUEST, requests).rowcount
        if attempts:
            said_attempts = conn.executemany(UPSERT_ATTEMPT, attempts).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return said, said_attempts
