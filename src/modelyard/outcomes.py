"""The routing log's closed vocabulary of outcomes, shared by router, ledger, gateway, dashboard,
replay and bench (failure *reasons* live beside the errors, in :class:`modelyard.errors.Reason`).

StrEnums: a value compares equal to its string and is stored verbatim, so rows written before
these types existed read back as the same members.
"""

from __future__ import annotations

from enum import StrEnum


class AttemptOutcome(StrEnum):
    """What became of one try of one model."""

    OK = "ok"
    #: failed transiently and was tried again on the same model
    RETRY = "retry"
    #: failed; the request moved on to the next model
    FALLBACK = "fallback"
    #: never sent: unavailable, cooling down, or out of time
    SKIPPED = "skipped"
    #: failed after part of its answer had been streamed to the caller
    INTERRUPTED = "interrupted"
    #: the caller went away (disconnect, Ctrl-C) while it ran
    CANCELLED = "cancelled"

    @property
    def moved_on(self) -> bool:
        """Did the request leave this attempt for another try or another model?"""
        return self in _MOVED_ON


_MOVED_ON = frozenset({AttemptOutcome.RETRY, AttemptOutcome.FALLBACK, AttemptOutcome.SKIPPED})


class RequestOutcome(StrEnum):
    """What became of a whole request."""

    #: the primary answered
    OK = "ok"
    #: a later model in the chain answered
    FALLBACK = "fallback"
    #: no model could answer
    FAILED = "failed"
    #: the answering model broke off after part of the answer was streamed
    INTERRUPTED = "interrupted"
    #: the caller went away before the answer was complete
    CANCELLED = "cancelled"

    @property
    def answered(self) -> bool:
        return self in (RequestOutcome.OK, RequestOutcome.FALLBACK)


class RequestKind(StrEnum):
    """What a request asked for: an answer (the routing log's NULL: every row from before kinds were kept), or
    vectors (``/v1/embeddings``, Ollama's ``/api/embed``)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
