"""Routing decisions as rows of the ``routing_decisions`` table, written off the request path.

No writer of its own: a decision is a :class:`~modelyard.ledger.writer.Row` in the runtime's
:class:`~modelyard.ledger.LogWriter` queue, so one thread per log file writes requests and
decisions together, with the same guarantees (batched, never blocks, repairs a bad value,
counts and reports a failure, never dies silently). ``runtime.log.flush()`` waits for both.
"""

from __future__ import annotations

import time

from modelyard.agents.classifier import Decision
from modelyard.ledger import LogWriter
from modelyard.ledger.writer import Row

_INSERT = ("INSERT INTO routing_decisions (request_id, ts, text, agent, method, confidence, ms) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")


def log_decision(writer: LogWriter, decision: Decision, *, text: str | None, request_id: str | None) -> None:
    """Queue one decision. ``text`` is None when the config says not to store text. The method goes in as its plain
    value (``fast``, …): the column, a held file's JSON and PostgreSQL all hold the string rows always held."""
    writer.submit_row(Row(_INSERT, (request_id, time.time(), text, decision.agent, decision.method.value,
                                    decision.confidence, decision.ms)))


def held_decision(writer: LogWriter, request_id: str) -> tuple[str | None, str, str] | None:
    """(text, agent, method) of the decision behind ``request_id`` — its own or, for a hand-off, its parent's — among
    the rows ``writer`` holds because the log's store refuses them (a full disk, another process's lock: not in the
    file yet), or None. What :func:`.ledger.labels.decision_of` reads from the file."""
    held = writer.held_items()
    parent = next((item.parent_id for item in held if not isinstance(item, Row) and item.id == request_id), None)
    for wanted in (request_id, parent):
        for item in reversed(held):
            if isinstance(item, Row) and item.insert == _INSERT and wanted is not None and item.values[0] == wanted:
                return item.values[2], item.values[3], item.values[4]
    return None
