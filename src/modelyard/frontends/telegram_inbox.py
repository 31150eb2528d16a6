"""Telegram updates kept on disk from the moment they are taken until they are handled.

Telegram forgets an update once a getUpdates call passes a higher ``offset``, and
python-telegram-bot makes that call at once, long before the answer is written: a bot killed
mid-answer (``kill -9``, the OOM killer, a power cut, a systemd restart that runs out of
patience) lost the message — it was neither answered nor fetched again. Here every update is
committed to the routing-log file *before* getUpdates hands it to the library, so before it can
be confirmed; it is marked done once handled. At start, what is not done is handled again,
first, in order (:meth:`Inbox.pending`); one that Telegram sends again (the process died
between taking it and the next poll) is recognised and dropped (:meth:`Inbox.take`).

What a replay can and cannot undo: the placeholder or part-answer already on screen is reused
(``message_ids``), so the chat shows one answer; an answer that was complete when the process
died (``answer``) is shown, not asked for again. A model that was half-way through is asked
again from the start (its first, cut-off request is in the log as cancelled, or not at all).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.ledger import connect
from modelyard.paths import hold_exclusive

log = logging.getLogger(__name__)

PENDING, ANSWERED, DONE = "pending", "answered", "done"
#: Telegram keeps an unconfirmed update for 24 hours; an unanswered one older than that is not answered
MAX_AGE = 24 * 3600.0
#: an answered one not yet shown (held by a long outage, the bot stopped meanwhile) is shown for this long: it was
#: dropped with the unanswered after 24 h, a finished answer lost
ANSWERED_MAX_AGE = 7 * 24 * 3600.0
#: done rows kept this long: long enough to recognise any update Telegram may still send again
KEEP_DONE = 2 * 24 * 3600.0
#: how often, while the bot runs, done rows past KEEP_DONE are deleted (and at each start): they were deleted at start
#: only, and a bot that runs for months kept every message it ever took, text and all
PRUNE_EVERY = 3600.0
#: longest wait for the file's write lock (another process's batch): the polling loop waits for it
BUSY_MS = 2000
#: seconds between two warnings that the inbox cannot be written
WARN_EVERY = 60.0


@dataclass(slots=True)
class Kept:
    """An update taken before this process started and not yet handled."""

    update_id: int
    payload: dict[str, Any]
    #: the chat and the messages that already show this answer (placeholder, part of it), to edit rather than add to
    shown: dict[str, Any] | None
    #: the complete answer, when the model had finished: shown again, not asked again
    answer: dict[str, Any] | None


class Inbox:
    """The ``telegram_inbox`` rows of one bot (its id: the token's first part), over its own connection."""

    def __init__(self, path: str | Path, bot_id: str):
        self.bot_id = bot_id
        self.path = Path(path)
        self._conn: sqlite3.Connection = connect(path)
        self._lock_fd: int | None = None
        # a commit here is the only copy of a message Telegram is about to forget: on disk before it returns,
        # power cuts included (the routing log's NORMAL can lose the last commits to one)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self._warned_at = -WARN_EVERY
        self._pruned_at = time.monotonic()

    def close(self) -> None:
        self.release()
        self._conn.close()

    def claim(self) -> bool:
        """Be the one process polling this token over this file (an flock, dropped when the process ends, however
        it ends). A second one fought the first for updates (409 Conflict, each taking what the other's poll did
        not), and at its start took the first's unanswered messages for a dead process's and answered them too."""
        if self._lock_fd is None:
            self._lock_fd = hold_exclusive(f"{self.path}.telegram-{self.bot_id}.lock")
        return self._lock_fd is not None

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def take(self, updates: list[tuple[int, dict[str, Any]]]) -> set[int]:
        """Keep these updates (id, JSON) in one commit; the ids not seen before (the rest were taken earlier).

        A file that cannot be written (disk full, locked past :data:`BUSY_MS`) keeps nothing and says so: every
        update counts as new and is answered as before the inbox, without surviving a kill — rather than not at
        all (the library would take the batch again and again, logging CRITICAL each time)."""
        now = time.time()
        fresh: set[int] = set()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for update_id, payload in updates:
                    cur = self._conn.execute(
                        "INSERT OR IGNORE INTO telegram_inbox (bot_id, update_id, received, payload, state)"
                        " VALUES (?, ?, ?, ?, ?)", (self.bot_id, update_id, now, json.dumps(payload), PENDING))
                    if cur.rowcount:
                        fresh.add(update_id)
                self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "the messages are answered, but would not survive a kill")
            return {update_id for update_id, _ in updates}
        return fresh

    def _failed(self, exc: Exception, consequence: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("telegram: the inbox in %s cannot be written (%s); %s", self.path, exc, consequence)

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._conn.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "a restart may answer a message again or not reuse its messages")

    def pending(self) -> list[Kept]:
        """What was taken and not handled, oldest first; unanswered and older than :data:`MAX_AGE`, or answered and
        older than :data:`ANSWERED_MAX_AGE`, is dropped (and logged)."""
        try:
            return self._pending()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "what an earlier run left unanswered is not answered now")
            return []

    def _pending(self) -> list[Kept]:
        now = time.time()
        stale = self._conn.execute(
            "UPDATE telegram_inbox SET state = ? WHERE bot_id = ? AND state = ? AND received < ?",
            (DONE, self.bot_id, PENDING, now - MAX_AGE)).rowcount
        if stale:
            log.warning("telegram: %d message(s) taken more than 24 hours ago were never answered; dropped", stale)
        lost = self._conn.execute(
            "UPDATE telegram_inbox SET state = ? WHERE bot_id = ? AND state = ? AND received < ?",
            (DONE, self.bot_id, ANSWERED, now - ANSWERED_MAX_AGE)).rowcount
        if lost:
            log.warning("telegram: %d answer(s) could not be shown for %d days; dropped", lost,
                        ANSWERED_MAX_AGE // 86400)
        self._prune()
        rows = self._conn.execute(
            "SELECT update_id, payload, message_ids, answer FROM telegram_inbox WHERE bot_id = ? AND state != ?"
            " ORDER BY update_id", (self.bot_id, DONE)).fetchall()
        return [Kept(r["update_id"], json.loads(r["payload"]), json.loads(r["message_ids"] or "null"),
                     json.loads(r["answer"] or "null")) for r in rows]

    def showing(self, update_id: int, chat_id: int, message_ids: list[int]) -> None:
        """The messages that show this update's answer so far."""
        self._write("UPDATE telegram_inbox SET message_ids = ? WHERE bot_id = ? AND update_id = ?",
                    (json.dumps({"chat_id": chat_id, "ids": message_ids}), self.bot_id, update_id))

    def answered(self, update_id: int, answer: dict[str, Any]) -> None:
        """The model's answer is complete (and in the history): a restart shows it rather than asks again."""
        self._write("UPDATE telegram_inbox SET state = ?, answer = ? WHERE bot_id = ? AND update_id = ?",
                    (ANSWERED, json.dumps(answer), self.bot_id, update_id))

    def done(self, update_id: int) -> None:
        self._write("UPDATE telegram_inbox SET state = ? WHERE bot_id = ? AND update_id = ?",
                    (DONE, self.bot_id, update_id))
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY:
            try:
                self._prune()
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "rows of messages answered days ago are kept longer")

    def _prune(self) -> None:
        self._pruned_at = time.monotonic()
        self._conn.execute("DELETE FROM telegram_inbox WHERE bot_id = ? AND state = ? AND received < ?",
                           (self.bot_id, DONE, time.time() - KEEP_DONE))

    def state(self, update_id: int) -> str | None:
        row = self._conn.execute("SELECT state FROM telegram_inbox WHERE bot_id = ? AND update_id = ?",
                                 (self.bot_id, update_id)).fetchone()
        return row["state"] if row else None
