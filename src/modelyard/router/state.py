"""The interface of one model's runtime state: its slots and its breaker.

The router asks these questions and nothing else, so where the answers live is a choice made
once, in the pool: in this process (the default) or shared between processes and hosts. Every
method that may cross a network is async; the in-process implementation answers at once.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from modelyard.errors import Reason
from modelyard.router.health import Admission
from modelyard.router.slots import QueueTimeout


@dataclass(slots=True, frozen=True)
class Ticket:
    """Leave to try a model: how it was granted, and the breaker generation it was granted in.

    A verdict (success or failure) carries its ticket back, so a request that started before the
    breaker last opened cannot move it: it describes the model as it was, not as it is.
    """

    admission: Admission
    generation: int


class Condition(StrEnum):
    """A model's condition as ``models``, ``/healthz``, ``/metrics`` and the dashboard show it."""

    AVAILABLE = "available"
    PROBING = "probing"
    BUSY = "busy"
    COOLING_DOWN = "cooling_down"
    UNAVAILABLE = "unavailable"


@dataclass(slots=True)
class ModelStatus:
    name: str
    provider: str
    state: Condition
    detail: str
    in_flight: int
    waiting: int
    limit: int
    is_local: bool


class ModelState(ABC):
    """Slots and breaker of one model. Implementations: :class:`~modelyard.router.pool.LocalState`."""

    name: str
    limit: int
    #: answers this process saw the model give (a count, not a clock: one add per answer, issue #15): keep-warm
    #: skips the preload of a model that answered since its last round (ops/warmup.py)
    answered: int = 0

    # -- slots ----------------------------------------------------------------------------
    @abstractmethod
    async def acquire(self, timeout: float) -> float:
        """Take a slot, waiting at most ``timeout`` s (FIFO); return seconds waited or raise QueueTimeout."""

    @abstractmethod
    async def release(self) -> None:
        """Give the slot back (to the oldest waiter, if any)."""

    @contextlib.asynccontextmanager
    async def slot_for_load(self, wait: float) -> AsyncIterator[bool]:
        """One slot for a load the provider sends behind a timed-out request (providers.base.PreloadSlot): True
        once held, False when none came free within ``wait`` s. The load is a request at the backend like any other;
        sent beside the slots, each process that timed out put one more than ``max_concurrent`` there."""
        try:
            await self.acquire(wait)
        except QueueTimeout:
            yield False
            return
        try:
            yield True
        finally:
            await self.release()

    # -- breaker --------------------------------------------------------------------------
    @abstractmethod
    async def admit(self) -> Ticket | None:
        """May a request try this model now? None: skip it (cooling down, or its one probe is out)."""

    @abstractmethod
    async def succeeded(self, ticket: Ticket) -> None:
        """The model answered."""

    @abstractmethod
    async def failed(self, ticket: Ticket, reason: Reason, retry_after: float | None = None) -> None:
        """The model failed for ``reason`` (only health failures count towards a cooldown)."""

    @abstractmethod
    async def abandoned(self, ticket: Ticket) -> None:
        """The request ended with no verdict on the model (queued out, cancelled): free its probe."""

    # -- what it looks like ---------------------------------------------------------------
    @abstractmethod
    def cooling_detail(self) -> str:
        """Why the model is being skipped, e.g. "12.0s left after server_error"."""

    @abstractmethod
    def snapshot(self) -> tuple[Condition, str, int, int]:
        """(condition, detail, in flight, waiting), cheap and synchronous (may be a cached view)."""

    def queue_full(self, max_queue: int) -> str:
        """Why a request should not queue here (every slot busy, ``max_queue`` already waiting), else "".

        Cheap and synchronous: shared implementations answer from their last view of the store, so
        across processes the count may be a refresh old — a bound on waiting, not a second semaphore.
        """
        _, _, in_flight, waiting = self.snapshot()
        return over_queue_bound(self.limit, in_flight, waiting, max_queue)

    def cooling(self) -> tuple[float, Reason | None]:
        """(seconds of cooldown left, the reason that opened it); (0, None) when not cooling down.

        Cheap and synchronous, like :meth:`snapshot`: the gateway asks it to tell a client when a
        retry could help (``Retry-After``) and whether it can help at all (a revoked key cools
        for ``max_seconds`` and will not fix itself).
        """
        return 0.0, None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop background work (heartbeats, watchers)."""


def over_queue_bound(limit: int, in_flight: int, waiting: int, max_queue: int) -> str:
    """The queue-length policy: move on at once only when no slot is free and the queue is at its bound."""
    if in_flight < limit or waiting < max_queue:
        return ""
    return f"{waiting} waiting for its {limit} busy slot{'s' if limit != 1 else ''} (max_queue {max_queue})"
