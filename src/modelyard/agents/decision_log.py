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
    """Queue one decision. ``text`` is None when the config says not to store text."""
    writer.submit_row(Row(_INSERT, (request_id, time.time(), text, decision.agent, decision.method,
                                    decision.confidence, decision.ms)))
