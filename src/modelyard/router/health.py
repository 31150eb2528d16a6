"""Per-model circuit breaker, so one sick model is skipped instead of stalling every agent.

closed --N consecutive failures--> open (skipped at once) --cooldown elapsed--> half-open:
exactly one request probes the model; success closes the breaker (traffic returns to the
primary), failure re-opens it with the cooldown doubled up to a ceiling. A 429 or 529
carrying ``retry-after`` opens it for that long (up to ``cooldown.max_retry_after``); a revoked
key or a missing model opens it at once for ``cooldown.max_seconds``. Scope is one model, never
a provider.
"""

from __future__ import annotations

from enum import StrEnum

from modelyard.config.schema import Cooldown
from modelyard.errors import HEALTH_FAILURES, PERSISTENT, Reason
from modelyard.router.clock import Clock, loop_clock


class State(StrEnum):
    CLOSED = "available"
    OPEN = "cooling_down"
    HALF_OPEN = "probing"


class Admission(StrEnum):
    """Why a request may try a model now."""

    #: the breaker is closed: go ahead
    PASS = "pass"
    #: the breaker is half-open and this request is its one probe: it must end with
    #: :meth:`Health.success`, :meth:`Health.failure` or :meth:`Health.end_probe`
    PROBE = "probe"


class Health:
    def __init__(self, policy: Cooldown, clock: Clock = loop_clock):
        self.policy = policy
        self.clock = clock
        self.state = State.CLOSED
        self.failures = 0
        #: read once from the frozen policy (a pydantic read costs ~380 instructions; success() runs per request)
        self.first_cooldown = policy.seconds
        self.cooldown = self.first_cooldown
        self.open_until = 0.0
        self.last_reason: Reason | None = None
        self._probing = False
        #: bumped each time the breaker opens; a verdict from a request that started in an earlier
        #: generation describes the model as it was, not as it is, and is ignored
        self.generation = 0

    def allow(self) -> Admission | None:
        """May a request try this model now? None means skip it (cooling down, or probed already)."""
        if self.state is State.CLOSED:
            return Admission.PASS
        if self.state is State.OPEN:
            if self.clock() < self.open_until:
                return None
            self.state = State.HALF_OPEN
        if self._probing:
            return None
        self._probing = True
        return Admission.PROBE

    def end_probe(self) -> None:
        """The probing request ended without a verdict (queued out, cancelled): free the probe."""
        self._probing = False

    def seconds_left(self) -> float:
        return max(0.0, self.open_until - self.clock()) if self.state is State.OPEN else 0.0

    def success(self, generation: int | None = None) -> None:
        if self.state is State.OPEN or (generation is not None and generation != self.generation):
            # A late answer from a request that started before the breaker opened says nothing
            # about the model now (a key revoked since, a process restarted): only a probe may close it.
            return
        self.state = State.CLOSED
        self.failures = 0
        self.cooldown = self.first_cooldown
        self._probing = False

    def failure(self, reason: Reason, retry_after: float | None = None, generation: int | None = None) -> None:
        """Count a failure; may open the breaker. ``generation`` is :attr:`generation` when the request
        started: a stale failure (from before the breaker last opened) must not re-open it under a probe — but the
        server's own word on how long to wait (a retry-after, a revoked key), from a request that was in flight when
        another failure opened the breaker, still lengthens it while open: dropped, the model was asked again at the
        first, shorter deadline (a peer gateway's form of it: BerriAI/litellm#40130)."""
        if generation is not None and generation != self.generation:
            if self.state is State.OPEN and reason in HEALTH_FAILURES:
                said = self._said(reason, retry_after)
                if said and self.clock() + said > self.open_until:
                    self.open_until, self.last_reason = self.clock() + said, reason
            return
        self._probing = False
        if reason not in HEALTH_FAILURES:
            return
        self.last_reason = reason
        self.failures += 1
        if self.state is State.HALF_OPEN:
            self.cooldown = min(self.cooldown * 2, self.policy.max_seconds)
            self._open(self.cooldown)
        elif said := self._said(reason, retry_after):
            self._open(said)
        elif self.failures >= self.policy.failures:
            self._open(self.cooldown)

    def _said(self, reason: Reason, retry_after: float | None) -> float:
        """How long the failure itself says to wait (0: it does not): the server's retry-after (believed, up to
        ``cooldown.max_retry_after``), or ``cooldown.max_seconds`` for a revoked key or a missing model, which will
        not fix itself in seconds."""
        if retry_after and reason in (Reason.RATE_LIMITED, Reason.OVERLOADED):
            return min(retry_after, self.policy.max_retry_after)
        return self.policy.max_seconds if reason in PERSISTENT else 0.0

    def _open(self, seconds: float) -> None:
        self.generation += 1
        self.state = State.OPEN
        self.open_until = self.clock() + seconds
