"""Routing labels learned from use, and the record of which of them the fast path trusts.

A label is "this text should have gone to that agent". They come from corrections — ``/agent X``
after a 👎 on an orchestrated turn, or followed by that turn's question asked again (chat, Telegram;
frontends/reask.py), ``modelyard rate ID good``
(the routed agent was right) or ``rate ID bad --agent X``, ``modelyard route --label X "…"``.
``modelyard routing learn`` decides whether they are used: each run is a ``routing_fits`` row
saying up to which label id the fast path trains, so a refit that scored worse is never used.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from modelyard.ledger.writer import Row


class LabelSource(StrEnum):
    CHAT = "chat"
    TELEGRAM = "telegram"
    RATE = "rate"
    CLI = "cli"


@dataclass(slots=True)
class Label:
    id: int
    text: str
    agent: str
    source: str


def add_label(conn: sqlite3.Connection, text: str, agent: str, source: LabelSource, *,
              request_id: str | None = None, previous: str | None = None) -> int:
    """Store one label (a later label for the same request replaces the earlier one)."""
    if request_id is not None:
        conn.execute("DELETE FROM routing_labels WHERE request_id = ?", (request_id,))
    cursor = conn.execute(
        "INSERT INTO routing_labels (ts, text, agent, source, request_id, previous) VALUES (?, ?, ?, ?, ?, ?)",
        (time.time(), text, agent, str(source), request_id, previous))
    return int(cursor.lastrowid or 0)


#: a label as a row for the log's writer (:func:`label_row`)
INSERT_LABEL = ("INSERT INTO routing_labels (ts, text, agent, source, request_id, previous) "
                "VALUES (?, ?, ?, ?, ?, ?)")


def label_row(text: str, agent: str, source: LabelSource, *, request_id: str | None = None,
              previous: str | None = None) -> Row:
    """One label as a row of the log's writer (ledger/writer.py): held with its other rows while the store refuses
    them (a full disk, another process's lock) and written once it takes them. Unlike :func:`add_label` it leaves an
    earlier label of the same request in the table (the writer runs INSERTs only); :func:`labels` reads the newest."""
    return Row(INSERT_LABEL, (time.time(), text, agent, str(source), request_id, previous))


def labels(conn: Any, upto: int | None = None) -> list[Label]:
    """The labels up to ``upto``, each request's newest only: a later label of a request replaces the earlier one
    (:func:`add_label` deletes it; a label written through the writer, :func:`label_row`, cannot)."""
    rows = conn.execute("SELECT id, text, agent, source FROM routing_labels l WHERE id <= ? AND (request_id IS NULL "
                        "OR id = (SELECT MAX(id) FROM routing_labels n WHERE n.request_id = l.request_id)) ORDER BY id",
                        (upto if upto is not None else 2**62,)).fetchall()
    return [Label(int(r[0]), r[1], r[2], r[3]) for r in rows]


@dataclass(slots=True)
class LabelEntry:
    """A label as ``routing labels`` shows it."""

    id: int
    ts: float
    text: str
    agent: str
    source: str
    previous: str | None
    trusted: bool


def recent_labels(conn: Any, limit: int) -> list[LabelEntry]:
    """The newest ``limit`` labels, newest first, each saying whether the fast path uses it."""
    upto = trusted_upto(conn)
    rows = conn.execute("SELECT id, ts, text, agent, source, previous FROM routing_labels ORDER BY id DESC LIMIT ?",
                        (limit,)).fetchall()
    return [LabelEntry(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], int(r[0]) <= upto) for r in rows]


def forget_labels(conn: Any, ids: list[int]) -> list[int]:
    """Delete these labels (a correction made by mistake); the ids that existed."""
    found = [int(r[0]) for r in conn.execute(
        f"SELECT id FROM routing_labels WHERE id IN ({', '.join('?' * len(ids))})", ids).fetchall()] if ids else []
    if found:
        conn.execute(f"DELETE FROM routing_labels WHERE id IN ({', '.join('?' * len(found))})", found)
    return found


def team_labels(conn: sqlite3.Connection) -> list[Label]:
    """With ``log.url``: the copy, in this host's file, of the labels the team's last accepted ``routing
    learn`` trusts (kept by the forwarder, ledger/forward.py)."""
    rows = conn.execute("SELECT id, text, agent, source FROM team_labels ORDER BY id").fetchall()
    return [Label(int(r[0]), r[1], r[2], r[3]) for r in rows]


def trusted_upto(conn: Any) -> int:
    """Labels with an id up to this are used by the fast path (0: none yet)."""
    row = conn.execute("SELECT MAX(upto_label) FROM routing_fits WHERE accepted = 1").fetchone()
    return int(row[0] or 0)


def record_fit(conn: Any, upto: int, accepted: bool, before: float | None, after: float | None,
               n_labels: int, detail: str) -> None:
    conn.execute("INSERT INTO routing_fits (ts, upto_label, accepted, before, after, n_labels, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (time.time(), upto, int(accepted), before, after, n_labels, detail))


def decision_of(conn: sqlite3.Connection, request_id: str) -> tuple[str | None, str, str] | None:
    """(text, agent, method) of the routing decision behind a request — its own, or its parent's when the
    request is a hand-off (writer → utility answers under utility's id) — or None if it was not routed."""
    row = conn.execute(
        "SELECT text, agent, method FROM routing_decisions WHERE request_id = ? "
        "OR request_id = (SELECT parent_id FROM requests WHERE id = ?) ORDER BY ts DESC LIMIT 1",
        (request_id, request_id)).fetchone()
    return (row[0], row[1], row[2]) if row else None
