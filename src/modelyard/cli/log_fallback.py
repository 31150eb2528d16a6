"""The shared routing log (PostgreSQL, ``log.url``) for ``models``, falling back to this host's own file whenever the
shared one cannot be read — at connect, or mid-command.

``models`` fell back to this host's rows only when the connection could not be opened: a connection cut mid-query
(the server stopped, a firewall dropping packets past ``pg.READ_BOUND``) ended it with exit 1 and no model listed,
though the listing needs the log only for each model's recent failures and spend. Now every statement that fails on
the shared log sends that statement, and every later one, to the local file, and :attr:`LogOrLocal.unread` says why
(the caller prints it and exits 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.ledger.store import LogConnection


class LogOrLocal:
    """A :class:`~modelyard.ledger.store.LogConnection` on the shared log until a statement there fails; from then
    on, this host's own file (opened by ``local``, on the first failure only)."""

    def __init__(self, shared: LogConnection | None, local: Callable[[], LogConnection], spool: Path,
                 why: str | None = None, *, blank: bool = False):
        self._conn = shared
        self._local = local
        self._spool = spool
        self._why = why
        #: no shared log, and ``local`` an empty one: the file itself could not be opened (its disk full, another
        #: process's lock) — ``models`` exited 1 listing no model, though it needs the log only for recent failures
        #: and spend
        self._blank = blank
        if shared is None:
            self._conn = local()

    @property
    def unread(self) -> str | None:
        """Why the shared log was not read (to say on stderr, exit 1), or None when every statement was answered."""
        if self._why is None:
            return None
        if self._blank:
            return (f"the routing log could not be read: {self._why} — the states above are the servers' own, without "
                    "the log's recent failures and spend")
        return (f"the shared routing log could not be read: {self._why} — the states above come from this host's own "
                f"rows ({self._spool}), which wait there to be forwarded")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        from modelyard.ledger.store import LogUnavailable

        assert self._conn is not None
        if self._why is None:
            try:
                return self._conn.execute(sql, params)
            except LogUnavailable as exc:
                self._why = str(exc)
                with contextlib.suppress(Exception):  # a cut connection: closing it must not hide why
                    self._conn.close()
                self._conn = self._local()
        return self._conn.execute(sql, params)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
