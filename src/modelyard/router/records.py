"""What the router remembers about each request and each attempt: the rows of the routing log."""

from __future__ import annotations

import random
from contextvars import ContextVar
from dataclasses import dataclass, field

from modelyard.errors import ModelyardError, Reason
from modelyard.outcomes import AttemptOutcome, RequestKind, RequestOutcome
from modelyard.router.clock import wall_clock
from modelyard.types import LENGTH

#: why the caller of a request cancelled in this context went away: a disconnect, or (set by the gateway, gateway/
#: transport.py) ``client_stalled`` when it stopped reading its answer and was cut off; read only when cancelled
CALLER_GONE: ContextVar[Reason] = ContextVar("modelyard_caller_gone", default=Reason.CANCELLED)


def new_request_id() -> str:
    """Unique enough for a log (64 random bits), cheap per request, copy-pasteable.

    ``random`` (reseeded from the OS at start and after fork), not ``secrets``: an id is not a
    secret, and the syscall behind ``secrets`` was 7% of the gateway's CPU under load.
    """
    return f"{random.getrandbits(64):016x}"


@dataclass(slots=True)
class Attempt:
    model: str
    provider: str
    outcome: AttemptOutcome
    reason: Reason | None = None
    detail: str = ""
    started_at: float = field(default_factory=wall_clock)
    queue_wait_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_per_s: float | None = None
    cost_usd: float = 0.0
    #: the part of ``tokens_in`` the provider read from / wrote to its prompt cache (priced apart: Price.cost)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: the part of ``cache_write_tokens`` written to a one-hour cache (2x input, not 1.25x: Price.cost)
    cache_write_1h_tokens: int = 0
    #: billed per token although its provider is a local-server protocol (config/billed.py: OpenRouter through
    #: provider: openai): its $0 without a price is 'price unknown', as a hosted backend's is
    billed: bool = False

    def describe(self) -> str:
        text = f"{self.model}: {self.outcome}"
        if self.reason:
            text += f" ({self.reason}"
            text += f": {self.detail})" if self.detail else ")"
        return text


@dataclass(slots=True)
class RequestRecord:
    id: str
    agent: str
    ts: float = field(default_factory=wall_clock)
    outcome: RequestOutcome = RequestOutcome.FAILED
    model: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    queue_wait_ms: float = 0.0
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_per_s: float | None = None
    cost_usd: float = 0.0
    prompt: str | None = None
    response: str | None = None
    thinking: str | None = None
    error: str | None = None
    parent_id: str | None = None
    #: why the answer ended, as the provider said (``length`` = cut off at ``max_tokens``); None without one
    finish_reason: str | None = None
    #: the answer's budget when it was cut off, as sent to the model (clamped, if it was), for the route line
    max_tokens: int | None = None
    #: the answer was cut where the model's context ended, not at its budget
    context_full: bool = False
    #: what was asked: None for an answer (chat, a text completion), ``embeddings`` for vectors
    kind: RequestKind | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == LENGTH

    @property
    def fallbacks(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome.moved_on]


class ChainExhausted(ModelyardError):
    """Every model in the agent's chain was tried or skipped; lists each with its reason (also the record's error)."""

    def __init__(self, agent: str, record: RequestRecord):
        self.agent = agent
        self.record = record
        lines = "\n".join(f"  - {a.describe()}" for a in record.attempts) or "  (no models)"
        super().__init__(f"agent '{agent}': no model could answer. Attempts:\n{lines}")
        record.error = str(self)


class StreamInterrupted(ModelyardError):
    """The answering model failed after part of its answer had already been streamed.

    The router never splices a second model's answer onto the first: the caller gets the
    partial text and decides (retry the whole request, or show what arrived).
    """

    def __init__(self, agent: str, record: RequestRecord, partial: str):
        self.agent = agent
        self.record = record
        self.partial = partial
        last = record.attempts[-1].describe() if record.attempts else ""
        super().__init__(f"agent '{agent}': the answer broke off after {len(partial)} characters ({last})")
