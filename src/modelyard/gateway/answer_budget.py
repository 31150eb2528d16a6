"""The answer bytes buffered ahead of slow clients, all connections together, and their bound.

Each connection may buffer up to 4 MiB of an answer its client has not taken (gateway/transport.py
``ANSWER_BUFFER``), so a slow reader does not hold its model's slot. That bounds one connection, not how many buffer
at once: 500 stopped clients behind a broken proxy held 4 MiB each, 2 GiB on a machine running models. Past the
first 64 KiB (asyncio's own buffer, which every connection keeps as before) a connection takes its buffer from this
budget in 1 MiB steps and gives it back once its client has taken it; when the budget is spent, that connection's
answer waits on its client instead, its model slot held, as before the answer buffer (``gateway.max_answers_mb``).
"""

from __future__ import annotations

#: the bytes a connection buffers without the budget: asyncio's default high-water mark
FREE = 64 * 1024
#: what a connection takes from the budget at a time
STEP = 1024 * 1024


class AnswerBudget:
    """``total`` bytes shared by every connection's answer buffer; ``held`` of them taken now, ``refused``: the steps
    not given (an answer that waited on its client for it), ``waiting``: the connections whose answer waits on its
    client now because a step was refused, ``said``: the log has said the budget was spent."""

    __slots__ = ("held", "peak", "refused", "said", "total", "waiting")

    def __init__(self, total: int):
        self.total = total
        self.held = 0
        self.peak = 0
        self.refused = 0
        self.waiting = 0
        self.said = False

    def take(self, size: int) -> bool:
        """Take ``size`` bytes if they fit; False (counted) if not."""
        held = self.held + size
        if held > self.total:
            self.refused += 1
            return False
        self.held = held
        if held > self.peak:
            self.peak = held
        return True

    def give(self, size: int) -> None:
        self.held -= size

    def status(self) -> dict[str, int]:
        """For /healthz: the budget, what is held now, the most held, the steps refused, the connections waiting."""
        return {"budget_bytes": self.total, "held_bytes": self.held, "peak_bytes": self.peak,
                "refused": self.refused, "waiting": self.waiting}
