"""How the routing log's schema steps are declared and applied, on SQLite and on PostgreSQL.

A step is a named Python function (simonw/llm's ``@migration`` pattern): the database remembers
the names it has run in ``_migrations``, so a step is applied exactly once wherever it is, steps
may run Python (copy, backfill, check what exists) and nothing splits SQL on ``;``. Each step runs
in its own transaction together with the row that records it, under a lock, so two processes
starting at once never apply one twice (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock
per schema).

Logs written before named steps existed counted applied steps in ``PRAGMA user_version``; the
first that many steps are adopted as applied. SQLite keeps ``user_version`` equal to the number of
applied steps, so an older modelyard still refuses a log that is newer than it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class NewerSchema(RuntimeError):
    """The log was migrated by a newer modelyard: this one does not know all of its steps."""


#: PostgreSQL's 32-bit INTEGER and REAL would truncate what SQLite stores in 64 bits
_PG_TYPES = ((re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
             (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"))


class Schema:
    """The handle a step receives: run statements, look at what exists, know the dialect."""

    def __init__(self, conn: Any, dialect: Dialect):
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One statement in the common subset (TEXT, INTEGER, REAL, PRIMARY KEY, indexes); on PostgreSQL
        INTEGER becomes BIGINT and REAL DOUBLE PRECISION, 64-bit like SQLite's."""
        if self.dialect is Dialect.POSTGRES:
            for pattern, replacement in _PG_TYPES:
                sql = pattern.sub(replacement, sql)
        return self.conn.execute(sql, params)

    def columns(self, table: str) -> list[str]:
        if self.dialect is Dialect.SQLITE:
            return [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})").fetchall()]
        rows = self.conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                 "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))
        return [row[0] for row in rows.fetchall()]


Step = Callable[[Schema], None]


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Step
    dialects: frozenset[Dialect]


def registrar(steps: list[Migration]) -> Callable[..., Any]:
    """A ``@migration`` decorator that appends to ``steps``: bare, or ``@migration(only=Dialect.SQLITE)``."""

    def migration(fn: Step | None = None, *, only: Dialect | None = None) -> Any:
        def add(step: Step) -> Step:
            name = step.__name__
            if any(m.name == name for m in steps):
                raise ValueError(f"migration {name} is defined twice")
            steps.append(Migration(name, step, frozenset([only]) if only else frozenset(Dialect)))
            return step

        return add(fn) if fn is not None else add

    return migration


_TABLE = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"


def _begin(conn: Any, dialect: Dialect) -> None:
    if dialect is Dialect.SQLITE:
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.modelyard_migrations'))")


def _applied(conn: Any, dialect: Dialect, steps: Sequence[Migration]) -> set[str]:
    """Names already applied (inside the lock): creates the table, adopts a legacy ``user_version``."""
    conn.execute(_TABLE)
    names = {row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()}
    if dialect is Dialect.SQLITE and not names:
        legacy = conn.execute("PRAGMA user_version").fetchone()[0]
        now = time.time()
        for step in steps[:legacy]:
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (step.name, now))
            names.add(step.name)
    return names


def _known(conn: Any, dialect: Dialect) -> set[str] | None:
    """Applied names without taking the lock (the fast path of every open); None if there is no table."""
    if dialect is Dialect.SQLITE:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone()
    else:
        exists = conn.execute("SELECT to_regclass('_migrations')").fetchone()[0]
    if not exists:
        return None
    return {row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()}


def _check_not_newer(names: Iterable[str], steps: Sequence[Migration]) -> None:
    unknown = sorted(set(names) - {m.name for m in steps})
    if unknown:
        raise NewerSchema(f"the routing log was migrated by a newer modelyard (steps {', '.join(unknown)} are "
                          "unknown here): upgrade modelyard")


def up_to_date(conn: Any, dialect: Dialect, steps: Sequence[Migration]) -> bool:
    """Whether every step is applied (two catalog reads, no lock): the check every open makes. Raises
    :class:`NewerSchema` when the database knows steps this modelyard does not."""
    known = _known(conn, dialect)
    if known is None:
        return False
    _check_not_newer(known, steps)
    return all(m.name in known for m in steps if dialect in m.dialects)


def migrate(conn: Any, dialect: Dialect, steps: Sequence[Migration]) -> list[str]:
    """Apply the steps this database has not run; return their names (empty when up to date)."""
    wanted = [m for m in steps if dialect in m.dialects]
    if up_to_date(conn, dialect, steps):
        return []
    done: list[str] = []
    for step in wanted:
        _begin(conn, dialect)
        try:
            applied = _applied(conn, dialect, steps)
            if step.name not in applied:  # another process may have run it while we waited for the lock
                step.apply(Schema(conn, dialect))
                conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (step.name, time.time()))
                applied.add(step.name)
                done.append(step.name)
            _check_not_newer(applied, steps)
            if dialect is Dialect.SQLITE:
                conn.execute(f"PRAGMA user_version={len(applied)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return done
