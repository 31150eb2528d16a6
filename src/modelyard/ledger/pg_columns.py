"""A row PostgreSQL refuses because a column of the log's tables was altered by hand, not for its own values.

The log's ``requests`` and ``attempts`` hold ``text``, ``bigint`` and ``double precision`` only (ledger/migrations.py on
PostgreSQL). A DBA's ``ALTER TABLE … ALTER COLUMN … TYPE`` (PostgreSQL docs, ALTER TABLE: 'SET DATA TYPE … the
column's values are converted') to ``varchar(n)``, ``integer``, an enum or a timestamp makes PostgreSQL refuse rows with
a data error — 22001 'value too long for type character varying(3)', 22003 'integer out of range', 22P02 'invalid
input value for enum', 22007/22008 for a timestamp (SQLSTATEs: PostgreSQL docs, Appendix A). The forwarder took a data
error for the row's own, counted it ``refused`` and took it out of the forward queue: every row the altered column
refused went that way, for good — after the column was put back none of them reached PostgreSQL (the class of
:mod:`.drift`, where a ``NOT NULL`` column or a ``CHECK`` added by hand refused every row). Now such a refusal, with
such a column there, is the table's: the rows wait in the spool, said with the column and how to restore it.
"""

from __future__ import annotations

from typing import Any

#: the column types the log's tables are made with on PostgreSQL
OWN_TYPES = frozenset({"text", "bigint", "double precision"})
#: data errors a column of another type gives a value of the log's own: too long, out of range, not its syntax,
#: datetime field / format (PostgreSQL docs, Appendix A). An encoding's (22021, 22P05) stay the row's own
TYPE_ERRORS = frozenset({"22001", "22003", "22P02", "22007", "22008"})

_COLUMNS = ("SELECT table_name, column_name, data_type, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name IN ('requests', 'attempts') "
            "ORDER BY table_name, ordinal_position")


class AlteredColumn(RuntimeError):
    """PostgreSQL refused a row for a column altered by hand: the database's refusal (the rows wait)."""


def altered(conn: Any, exc: BaseException) -> AlteredColumn | None:
    """The refusal ``exc`` as a column altered by hand, when it is a type's data error and such a column is there."""
    if getattr(exc, "sqlstate", None) not in TYPE_ERRORS:
        return None
    try:
        rows = conn.execute(_COLUMNS).fetchall()
    except Exception:  # cannot look: the row's own refusal, as before
        return None
    others = [(table, column, kind, length) for table, column, kind, length in rows if kind not in OWN_TYPES]
    if not others:
        return None
    changed = [f"{table}.{column} is {kind}{f'({length})' if length else ''}" for table, column, kind, length in others]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    table, column, was, _ = others[0]
    kind = ("bigint" if was in ("integer", "smallint") else "double precision" if was in ("numeric", "real")
            else "text")
    return AlteredColumn(
        f"PostgreSQL refused a row ({first}) for a column of the log's tables altered by hand: {', '.join(changed)} — "
        f"the log writes text, bigint and double precision; the rows wait in the local spool until it is restored "
        f"(e.g. ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind})")
