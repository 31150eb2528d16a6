"""A mark each forwarder leaves in the PostgreSQL log it connects to: so two hosts whose servers *look* alike can tell
whether they write one log.

Two hosts compare the log's identity (:meth:`.pg.PgConnection.identity`: the cluster's ``system_identifier`` and
timeline, the database's oid, the schema). A server made by copying another's files — a VM image or a Docker volume
cloned for a second host, a base backup started without archive recovery — has every one of those, and nothing a role
may read tells it from the original (its data directory, its address are not: both may be ``localhost:5432``). A
random id written in a table at schema creation is copied with the rest. What a copy cannot have is what was written
after it was made: so each forwarder writes a random mark of its own into the log (:func:`write`) before it makes the
identity known, registers the mark beside the identity in the shared state, and a host that finds another host's
identity equal to its own looks for that host's mark in its own log (:func:`present`) — absent, the two are copies.
A courtesy: a role that may not create the table leaves no mark, and the identity alone decides, as before.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

TABLE = "log_marks"
_CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (mark TEXT PRIMARY KEY, seen DOUBLE PRECISION NOT NULL)"
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
#: a mark not written again for this long is a process gone for good: deleted by the next write
FORGET = 7 * 86400.0


def new() -> str:
    return secrets.token_hex(8)


def write(pg: Any, mark: str) -> None:
    try:
        pg.execute(_CREATE)
    except Exception as exc:  # two hosts creating it at once: PostgreSQL refuses the second (pg_type's unique key)
        if "already exists" not in str(exc):
            raise
    pg.execute(f"INSERT INTO {TABLE} (mark, seen) VALUES (?, {_NOW}) ON CONFLICT (mark) DO UPDATE SET seen = "
               "EXCLUDED.seen", (mark,))
    pg.execute(f"DELETE FROM {TABLE} WHERE seen < {_NOW} - ?", (FORGET,))


def present(pg: Any, marks: Collection[str]) -> set[str]:
    """Which of ``marks`` this log holds."""
    if not marks:
        return set()
    listed = sorted(marks)
    rows = pg.execute(f"SELECT mark FROM {TABLE} WHERE mark IN ({', '.join('?' * len(listed))})", listed).fetchall()
    return {str(row[0]) for row in rows}
