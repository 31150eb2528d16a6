"""Open the routing log's SQLite file: WAL mode, migrated to the current schema.

WAL with ``synchronous=NORMAL`` means a killed process never corrupts the file and loses
no committed transaction; only a power cut can drop the last few commits.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from modelyard.errors import Reason
from modelyard.ledger import orphan
from modelyard.ledger.damaged import alone
from modelyard.ledger.migrations import MIGRATIONS
from modelyard.ledger.migrator import Dialect, migrate
from modelyard.outcomes import AttemptOutcome, RequestOutcome

# sqlite3 "adapts" every parameter that is not exactly an int, float, str or bytearray — None and our StrEnums
# included — and without an adapter registered for its type that means asking the protocol type for
# ``__adapt__``: an AttributeError raised and discarded per value. A routing row binds about a dozen such values
# (NULL columns, outcomes, reasons): 0.5-0.7 us each, on the writer thread, holding the GIL (issue #15). With an
# adapter it is a dict lookup and a call of a C function; what is stored is the same (NULL, the enum's text).
sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]  # {}.get(None) is None, in C
for _enum in (RequestOutcome, AttemptOutcome, Reason):
    sqlite3.register_adapter(_enum, str)  # a StrEnum's str() is its value

log = logging.getLogger(__name__)

#: ``PRAGMA user_version`` of an up-to-date file: the number of SQLite steps (older modelyards read it)
SCHEMA_VERSION = sum(1 for m in MIGRATIONS if Dialect.SQLITE in m.dialects)


def connect(path: str | Path, *, readonly: bool = False, busy: float = 10.0) -> sqlite3.Connection:
    """``busy``: seconds to wait for another connection's lock (a writer trying again to open a log it could not
    open at start waits briefly: it holds its rows meanwhile, ledger/writer.py)."""
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite would delete the write-ahead log of a deleted file, and its rows with it (ledger/orphan.py)
    if orphaned(path) and (said := set_orphan_aside(path)):
        log.error("%s", said)
    conn = sqlite3.connect(str(path), timeout=busy, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
    if not readonly:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, Dialect.SQLITE, MIGRATIONS)
        except BaseException:  # a log refused (NewerSchema, locked): the caller never gets this connection to close
            conn.close()
            raise
    return conn


def connect_readonly(path: str | Path, *, immutable: bool = False, timeout: float = 5.0) -> sqlite3.Connection:
    """``path`` opened read-only, never created nor migrated: a reader (a backup, ``check``, the sweeper's look) must
    not make a log where none is. ``immutable``: as it lies on disk — no lock taken, no ``-shm`` made beside it — for a
    file no write-ahead log lies beside (its rows would be missed)."""
    mode = "immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?{mode}", uri=True, timeout=timeout)


def orphaned(path: Path) -> bool:
    """A write-ahead log without its database at ``path`` (:func:`.orphan.orphaned`); not for ``:memory:``."""
    return str(path) != ":memory:" and orphan.orphaned(path)


def set_orphan_aside(path: Path) -> str | None:
    """:func:`.orphan.set_aside` under the directory's lock (two processes starting at once set it aside once)."""
    with alone(path):
        return orphan.set_aside(path)
