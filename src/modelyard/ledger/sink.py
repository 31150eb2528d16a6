"""Committing a batch of routing-log rows: one statement text for SQLite and PostgreSQL.

Rows are upserted (``INSERT … ON CONFLICT … DO UPDATE``, which both databases speak), so writing
a batch twice — a forwarder that died between PostgreSQL's commit and noting its progress — leaves
one row per request; a rating already given is never replaced by a missing one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Keys:
    """The unique keys the upserts name (``ON CONFLICT (…)``): the log's own, or a wider one a DBA gave a table —
    a table partitioned by time must have its partition column in every unique key (PostgreSQL's docs, 5.12.2.3:
    "the constraint's columns must include all of the partition key columns"), so ``requests`` partitioned by ``ts``
    is keyed ``(id, ts)``: a request's ``ts`` never changes, so that names one row as ``id`` did."""

    requests: tuple[str, ...] = ("id",)
    attempts: tuple[str, ...] = ("request_id", "seq")


KEYS = Keys()


@functools.lru_cache(maxsize=16)
def upserts(keys: Keys) -> tuple[str, str]:
    """The request and attempt upserts for ``keys``."""
    return (upsert("requests", FORWARDED_REQUEST_COLUMNS, keys.requests, keep=RATING_COLUMNS),
            upsert("attempts", ATTEMPT_COLUMNS, keys.attempts))


UPSERT_REQUEST, UPSERT_ATTEMPT = upserts(KEYS)


def write_batch(conn: Any, requests: Sequence[Sequence[Any]],
                attempts: Sequence[Sequence[Any]], keys: Keys = KEYS) -> tuple[int, int]:
    """Commit request rows (:data:`FORWARDED_REQUEST_COLUMNS`, or without the ratings: they are padded)
    and attempt rows in one transaction; rolled back, and raised, on any error. Returns how many request rows and how
    many attempt rows the database said it inserted or updated (-1: it did not say): fewer than sent means something
    on the table discarded the rest without an error — a ``BEFORE INSERT`` trigger that returns NULL."""
    width = len(FORWARDED_REQUEST_COLUMNS)
    requests = [tuple(r) + (None,) * (width - len(r)) for r in requests]
    said = said_attempts = 0
    upsert_request, upsert_attempt = upserts(keys)
    conn.execute("BEGIN")
    try:
        if requests:
            said = conn.executemany(upsert_request, requests).rowcount
        if attempts:
            said_attempts = conn.executemany(upsert_attempt, attempts).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return said, said_attempts


#: each unique index of a table with no predicate nor expression: its columns, in order
_UNIQUE_KEYS = ("SELECT array_agg(a.attname::text ORDER BY k.n) AS cols FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = to_regclass(?) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL "
                "GROUP BY i.indexrelid")


def keys_found(conn: Any) -> Keys | None:
    """The keys PostgreSQL's ``requests`` and ``attempts`` have now, where the log's own are gone: for each, the
    shortest unique key holding the log's own and only columns the forwarder sends; None when a table has none (a
    primary key dropped by hand: nothing to upsert on)."""
    found = []
    for table, own, sent in (("requests", KEYS.requests, FORWARDED_REQUEST_COLUMNS),
                             ("attempts", KEYS.attempts, ATTEMPT_COLUMNS)):
        usable = [tuple(row[0]) for row in conn.execute(_UNIQUE_KEYS, (table,)).fetchall()
                  if set(own) <= set(row[0]) <= set(sent)]
        if not usable:
            return None
        found.append(min(usable, key=len))
    return Keys(*found)
