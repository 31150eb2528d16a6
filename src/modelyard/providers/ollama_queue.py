"""Ollama's own queue in front of a model: ``OLLAMA_NUM_PARALLEL`` below ``max_concurrent``.

Ollama runs at most OLLAMA_NUM_PARALLEL requests of a model at once and keeps the others waiting in arrival order
(docs/faq.md "How does Ollama handle concurrent requests?"; llm/server.go's Completion takes one of a semaphore of
numParallel before the prompt is read). Its API does not say the number. modelyard counted a request waiting there
as running: its first-token bound ran while it queued, and under load the model fell back as if it were sick.

What the answer does say: ``total_duration`` is timed from the moment the handler began (server/routes.go:
``time.Since(checkpointStart)``), ``load_duration`` up to the model's runner being ready (``checkpointLoaded``,
before the completion), and ``prompt_eval_duration`` / ``eval_duration`` are the runner's own reading and decoding.
What is left of ``total_duration`` past those three is the wait for a turn (and the template and tokenising, a
fraction of a second): past :data:`QUEUE_SIGN` seconds, the request queued inside Ollama.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("modelyard.providers.ollama")

#: seconds of ``total_duration`` not spent loading, reading or decoding past which a request is taken to have waited
#: in Ollama's queue (below it: the template and the tokenising of a long prompt)
QUEUE_SIGN = 1.0
_DURATIONS = ("load_duration", "prompt_eval_duration", "eval_duration")


def queued_seconds(data: dict[str, Any]) -> float | None:
    """Seconds the answer of ``data`` (its last line) waited in Ollama before its runner took it; None: not said."""
    total = data.get("total_duration")
    if type(total) is not int:
        return None
    for key in _DURATIONS:
        part = data.get(key)
        if type(part) is not int:
            return None  # not all four, or not Ollama's integer nanoseconds: no reading
        total -= part
    return max(0, total) / 1e9


class ParallelWatch:
    """This process's requests of one model at Ollama, and what their answers say of Ollama's queue.

    A request that waited there while ``others`` of this process's requests were already in flight says that
    Ollama ran at most ``others`` at once (when no other client shares it). Below ``max_concurrent`` that is worth a
    warning, once: the first-token timeouts it causes look like a sick model."""

    def __init__(self, name: str, limit: int) -> None:
        self.name, self.limit = name, limit
        self.in_flight = 0
        #: the fewest requests seen in flight with one more queued at Ollama: at most this many run there at once
        self.at_most: int | None = None
        self.queued: float = 0.0  # the longest such wait, s

    def started(self) -> int:
        """Count a request in; the number already in flight before it."""
        self.in_flight += 1
        return self.in_flight - 1

    def ended(self) -> None:
        self.in_flight -= 1

    def answered(self, data: dict[str, Any], others: int) -> None:
        """Read an answer's last line: a wait in Ollama's queue with fewer than ``max_concurrent`` ahead of it."""
        if not 0 < others < self.limit or (queued := queued_seconds(data)) is None or queued < QUEUE_SIGN:
            return
        first = self.at_most is None
        self.at_most = others if self.at_most is None else min(self.at_most, others)
        self.queued = max(self.queued, queued)
        if first:
            log.warning("model %s: Ollama kept a request waiting %.1f s in its own queue behind %d of this model's "
                        "requests from this process: it runs at most %d at once (OLLAMA_NUM_PARALLEL), below "
                        "models.%s.max_concurrent (%d). Requests queued there count as running here, and their "
                        "first-token timeouts look like a sick model: set models.%s.max_concurrent to %d, or raise "
                        "OLLAMA_NUM_PARALLEL", self.name, queued, others, others, self.name, self.limit,
                        self.name, others)

    def note(self) -> str:
        """What was seen, in one sentence ("" when nothing). No command shows it yet (``models`` or ``plan`` could):
        the warning :meth:`answered` logs once is what a person sees."""
        if self.at_most is None:
            return ""
        return (f"Ollama queued requests past {self.at_most} at once (waits up to {self.queued:.1f} s): "
                f"OLLAMA_NUM_PARALLEL is below max_concurrent {self.limit}")
