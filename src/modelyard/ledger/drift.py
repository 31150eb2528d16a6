"""A row refused because the log's table is no longer the one this modelyard made, not for its own values.

A newer modelyard (or a person) may add a column that must be filled — ``NOT NULL`` without a default, the usual
second step of a migration that backfills old rows and then drops the default — or a ``CHECK`` constraint. This
modelyard's ``INSERT`` does not name that column, so *every* row it writes is refused with an integrity error, the
class the writer used to blame on one row's values: each row was counted as lost (SQLite) or refused and taken out of
the forward queue (PostgreSQL), and every row from then on went the same way, even after the table was put right.
Others met the same thing: a legacy ``NOT NULL`` column no insert fills blocked every later insert
(tina4stack/tina4-python#93; gorkem-bwl/atlas#3: 'null value in column "account_id" violates not-null constraint').

Told apart here: the refusal names a column none of the row's statements write, or one this modelyard's own schema
leaves nullable (a newer one made ``model`` required: every failed request, which no model answered, was lost), or a
constraint this modelyard's schema never has (``CHECK``, ``FOREIGN KEY``). Those rows are the store's to take: held
and tried again (nothing lost), with a sentence that says what changed and what to do. A ``NOT NULL`` column of this
modelyard's own schema, left empty by the row, stays that row's own fault.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

_NOT_NULL = re.compile(r"NOT NULL constraint failed: (\w+)\.(\w+)")
#: constraints no table of this modelyard's schema has (ledger/migrations.py): only a newer one, or a person, adds them
_FOREIGN = ("CHECK constraint failed", "FOREIGN KEY constraint failed")
_INTO = re.compile(r"\bINTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)


def written(inserts: Iterable[str]) -> dict[str, frozenset[str]]:
    """table -> the columns ``inserts`` (``INSERT … INTO table (a, b, …) …``) give values to."""
    out: dict[str, frozenset[str]] = {}
    for insert in inserts:
        if m := _INTO.search(insert):
            table, columns = m.group(1), frozenset(c.strip() for c in m.group(2).split(","))
            out[table] = out.get(table, frozenset()) | columns
    return out


@functools.cache
def own_not_null() -> dict[str, frozenset[str]]:
    """table -> its NOT NULL columns in this modelyard's own schema (its migrations run once on an in-memory
    database): a NOT NULL column the table has beyond these was added by a newer modelyard, or by hand."""
    from modelyard.ledger.migrations import MIGRATIONS
    from modelyard.ledger.migrator import Dialect, migrate

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, Dialect.SQLITE, MIGRATIONS)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: frozenset(r[1] for r in conn.execute(f'PRAGMA table_info("{t}")') if r[3]) for t in tables}
    finally:
        conn.close()


def refused_by_table(exc: BaseException, inserts: Iterable[str], path: Path) -> str | None:
    """The sentence to say when SQLite refused a row because of the table (see the module docstring); None when the
    refusal is the row's own."""
    if not isinstance(exc, sqlite3.IntegrityError):
        return None
    text = str(exc)
    if m := _NOT_NULL.search(text):
        table, column = m.groups()
        given = column in written(inserts).get(table, frozenset())
        if given and column in own_not_null().get(table, ()):
            return None  # a value this row left empty, which this modelyard's own schema requires: its own
        what = (f"its table {table} has a column {column} that must be filled (NOT NULL), which this modelyard "
                "leaves empty" if given else
                f"its table {table} has a column {column} that must be filled (NOT NULL, no default), which this "
                "modelyard does not know")
        fix = "or move this log aside for this one (it makes a new file)"
    elif text.startswith(_FOREIGN):
        what = f"a constraint this modelyard does not know refuses its rows ({text})"
        fix = "or drop that constraint"
    else:
        return None
    return (f"routing log {path}: {what} — a newer modelyard migrated this log, or it was changed by hand; rows are "
            f"held and written once the table takes them: run the newer modelyard here too, {fix}")


#: the tables every request is written to: without them the store refuses everything, and that is said as it is
_REQUEST_TABLES = frozenset({"requests", "attempts"})
_GONE = re.compile(r"no such table: (?:main\.)?(\w+)|table (\w+) has no column named (\w+)")


def _gone(exc: BaseException) -> tuple[str, str] | None:
    """(the table, what became of it) when SQLite refused a statement because a table it writes is gone or lacks one
    of its columns; None otherwise."""
    if not isinstance(exc, sqlite3.OperationalError) or not (m := _GONE.search(str(exc))):
        return None
    table = m.group(1) or m.group(2)
    return table, f"its table {table} is gone" if m.group(1) else f"its table {table} has no column {m.group(3)}"


def table_gone(exc: BaseException, insert: str, path: Path) -> str | None:
    """The sentence when SQLite refused ``insert`` because its own table — one beside the requests' (the routing
    decisions) — is gone or lacks a column of it: dropped by hand (its rows hold prompt text), renamed by a newer
    modelyard. Those rows are held; the requests' rows go on. It held every row batched after it, requests too, for as
    long as the table was missing — and with it gone for good, every later request. None otherwise."""
    if (gone := _gone(exc)) is None or gone[0] in _REQUEST_TABLES or gone[0] not in written((insert,)):
        return None
    what = gone[1]
    return (f"routing log {path}: {what} (dropped or changed by hand, or by a newer modelyard): its rows are held and "
            "written once it is back, the requests' rows go on — restore it from a backup of the log, or run the "
            "newer modelyard here too")


def requests_changed(exc: BaseException, path: Path) -> str | None:
    """The sentence when the requests' own tables are gone or lack a column this modelyard writes (renamed by a newer
    modelyard, or by hand): every row is held, and SQLite's 'table requests has no column named …' said neither why
    nor what to do. None otherwise."""
    if (gone := _gone(exc)) is None or gone[0] not in _REQUEST_TABLES:
        return None
    what = gone[1]
    return (f"routing log {path}: {what} (changed by hand, or by a newer modelyard): every row is held, and kept in a "
            "file at close for the next writer — run the newer modelyard here too, or restore the table from a backup "
            "of the log")
