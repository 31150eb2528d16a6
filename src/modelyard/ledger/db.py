"""Open the routing log's SQLite file: WAL mode, migrated to the current schema.

WAL with ``synchronous=NORMAL`` means a killed process never corrupts the file and loses
no committed transaction; only a power cut can drop the last few commits.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyard.ledger.migrations import MIGRATIONS
from modelyard.ledger.migrator import Dialect, migrate

#: ``PRAGMA user_version`` of an up-to-date file: the number of SQLite steps (older modelyards read it)
SCHEMA_VERSION = sum(1 for m in MIGRATIONS if Dialect.SQLITE in m.dialects)


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, Dialect.SQLITE, MIGRATIONS)
    return conn
