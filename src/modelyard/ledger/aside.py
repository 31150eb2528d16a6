"""The files set aside beside a routing log, each with what it holds and the command that gets its rows back.

Three events set a file aside beside the log, each said once as an ERROR or WARNING in a process that may be long gone:
SQLite finding the log damaged (``<log>.damaged-<time>``, :mod:`.damaged`), the log file deleted while its write-ahead
log stayed (``<log>.orphaned-<time>``, :mod:`.orphan`), another file moved over the log while a writer had it open
(``<log>.replaced-<time>``, :mod:`.replaced`; ``<log>-wal.replaced-<time>`` from before). The requests in them are in
neither ``log`` nor ``report``: ``modelyard check`` names every one of them, from here, until they are removed.
"""

from __future__ import annotations

import contextlib
import enum
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

#: the tables ``log`` and ``report`` read, copied back from a file that can be read (their keys make it idempotent)
_TABLES = ("requests", "attempts")


class Kind(enum.Enum):
    """Why a file was set aside, as its name says."""

    DAMAGED = "damaged"
    ORPHANED = "orphaned"
    REPLACED = "replaced"


_WHY = {Kind.DAMAGED: "SQLite found the log damaged",
        Kind.ORPHANED: "the log file was deleted while its write-ahead log stayed",
        Kind.REPLACED: "another file was moved over the log while it was written"}


@dataclass(frozen=True)
class SetAside:
    """One file set aside: its path, why, and the requests SQLite can read in it (None: it cannot be read as tables,
    ``error`` saying why)."""

    path: Path
    kind: Kind
    requests: int | None
    error: str = ""

    @property
    def raw(self) -> bool:
        """A write-ahead log without its database (page images only): no SQLite tool reads it as tables."""
        return _raw(self.path)

    def holds(self) -> str:
        if self.raw:
            return "a write-ahead log without its database, which no table can be read from"
        if self.requests is None:
            return f"pages SQLite cannot read as tables ({self.error})"
        return f"{self.requests} request(s) SQLite can read"

    def command(self, log: Path) -> str:
        """The shell command that gets its rows back; empty when there is none."""
        if self.raw:
            return ""
        if self.kind is Kind.DAMAGED or self.requests is None:  # .recover reads what is left of damaged pages
            return recover_command(shlex.quote(str(self.path)))
        attach = str(self.path).replace("'", "''")
        copy = "; ".join(f"INSERT OR IGNORE INTO {t} SELECT * FROM old.{t}" for t in _TABLES)
        sql = f"ATTACH '{attach}' AS old; {copy}"
        return f"sqlite3 {shlex.quote(str(log))} {_shell(sql)}"

    def said(self, log: Path) -> str:
        """What ``check`` says of it."""
        return (f"routing log {log}: {self.path.name} was set aside beside it when {_WHY[self.kind]}; it holds "
                f"{self.holds()}; nothing in it is in `log` or `report`")

    def todo(self, log: Path) -> str:
        """What ``check`` suggests: the command, then removing the file."""
        if command := self.command(log):
            return f"get its rows back: {command} — then remove {self.path.name}"
        return f"no SQLite tool reads it (a forensic tool may); remove {self.path.name} once you no longer need it"


def recover_command(name: str) -> str:
    """The command that reads what SQLite can of a damaged file ``name`` (a shell word, or a name with a placeholder
    in it) into ``recovered.sqlite3``: one text for every message that points at it."""
    return f"sqlite3 {name} .recover | sqlite3 recovered.sqlite3"


def _shell(text: str) -> str:
    """``text`` as one shell word: in double quotes where the shell leaves all of it as it is — shlex's quoting of the
    single quotes SQL needs (``'"'"'``) is hard to read and to retype."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def _raw(path: Path) -> bool:
    """Set aside as a bare write-ahead log: one with no page 1 (``….orphaned-<time>.wal``), or one the writer kept
    before the old file itself was copied whole (``<log>-wal.replaced-<time>``)."""
    return path.name.endswith(".wal") or "-wal.replaced-" in path.name


def _requests(path: Path) -> tuple[int | None, str]:
    """Requests SQLite reads in ``path``, read only: as it lies on disk (``immutable``, nothing made beside it) unless
    a write-ahead log is there, whose rows count too."""
    from modelyard.ledger.db import connect_readonly  # db imports orphan, which imports this module

    try:
        with contextlib.closing(connect_readonly(path, immutable=not Path(f"{path}-wal").exists())) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]), ""
    except (sqlite3.Error, OSError, ValueError) as exc:
        return None, str(exc)


def beside(log: Path) -> list[SetAside]:
    """Every file set aside beside ``log``, oldest first within each kind (damaged, orphaned, replaced)."""
    found: list[SetAside] = []
    for kind in Kind:
        patterns = [f"{log.name}.{kind.value}-*"]
        if kind is Kind.REPLACED:  # a write-ahead log kept alone, by the writer of before ledger38 or a restore
            patterns.append(f"{log.name}-wal.{kind.value}-*")
        try:
            paths = sorted({p for pattern in patterns for p in log.parent.glob(pattern)
                            if not p.name.endswith(("-wal", "-shm", "-journal"))})
        except OSError:
            continue
        found += [SetAside(p, kind, *((None, "") if _raw(p) else _requests(p))) for p in paths]
    return found
