"""The pool: one entry per configured model — its provider and its runtime state (slots + breaker).

The runtime builds one pool and hands it to every router it makes (the gateway's direct
``model:NAME`` router included), so limits, queues and cooldowns are the same object however a
request arrives. Where the state lives is decided here, once: :class:`LocalState` keeps it in
this process; with ``state: redis://…`` in the config (or ``MODELYARD_STATE`` in the
environment) :class:`~modelyard.router.shared.RedisState` shares it between processes and hosts;
a front-end (``borrow_from``: its config path) without Redis borrows slots and breakers from the
running ``serve`` of the same config (:mod:`modelyard.router.lending`), else keeps them here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from modelyard.config import dburl
from modelyard.config.schema import Config, Cooldown, StateConfig
from modelyard.errors import ConfigError, Reason
from modelyard.providers import Provider, build_provider
from modelyard.router.clock import Clock, loop_clock
from modelyard.router.health import Admission, Health, State
from modelyard.router.slots import Slots
from modelyard.router.spend import spend_caps
from modelyard.router.state import Condition, ModelState, ModelStatus, Ticket, over_queue_bound

if TYPE_CHECKING:
    from modelyard.router.lending.borrower import ServeLink
    from modelyard.router.shared import LinkStatus, RedisLink

#: a Redis URL here overrides ``state.url`` of the config; ``local`` keeps the state in-process
STATE_ENV = "MODELYARD_STATE"


class LocalState(ModelState):
    """Slots and breaker in this process: answers in microseconds, shared by every router here."""

    def __init__(self, name: str, limit: int, cooldown: Cooldown, clock: Clock = loop_clock):
        self.name = name
        self.limit = limit
        self.slots = Slots(limit)
        self.health = Health(cooldown, clock)
        self._pass: Ticket | None = None

    async def acquire(self, timeout: float) -> float:
        if self.slots.try_acquire():  # a free slot and nobody queued: no second coroutine
            return 0.0
        return await self.slots.acquire(timeout)

    async def release(self) -> None:
        self.slots.release()

    def queue_full(self, max_queue: int) -> str:
        return over_queue_bound(self.limit, self.slots.in_flight, self.slots.waiting, max_queue)

    async def admit(self) -> Ticket | None:
        admission = self.health.allow()
        if admission is None:
            return None
        generation = self.health.generation
        if admission is Admission.PASS:  # tickets are immutable: one per generation serves every request
            ticket = self._pass
            if ticket is None or ticket.generation != generation:
                ticket = self._pass = Ticket(admission, generation)
            return ticket
        return Ticket(admission, generation)

    async def succeeded(self, ticket: Ticket) -> None:
        self.answered += 1
        self.health.success(ticket.generation)

    async def failed(self, ticket: Ticket, reason: Reason, retry_after: float | None = None) -> None:
        self.health.failure(reason, retry_after, ticket.generation)

    async def abandoned(self, ticket: Ticket) -> None:
        if ticket.admission is Admission.PROBE and self.health.state is State.HALF_OPEN:
            self.health.end_probe()

    def cooling_detail(self) -> str:
        return f"{self.health.seconds_left():.1f}s left after {self.health.last_reason}"

    def cooling(self) -> tuple[float, Reason | None]:
        left = self.health.seconds_left()
        return (left, self.health.last_reason) if left > 0 else (0.0, None)

    def snapshot(self) -> tuple[Condition, str, int, int]:
        health, slots = self.health, self.slots
        if health.state is State.OPEN and health.seconds_left() > 0:
            condition, detail = Condition.COOLING_DOWN, f"{health.seconds_left():.0f}s left after {health.last_reason}"
        elif slots.in_flight >= slots.limit:
            condition, detail = Condition.BUSY, f"{slots.waiting} waiting"
        else:
            condition, detail = Condition(health.state.value), ""  # the breaker's states are conditions too
        return condition, detail, slots.in_flight, slots.waiting


def stays_local() -> bool:
    """``MODELYARD_STATE=local`` (``--local``): this process keeps its own state, borrows nothing."""
    return os.environ.get(STATE_ENV, "").strip() == "local"


def state_settings(config: Config) -> StateConfig | None:
    """Where per-model state lives: ``$MODELYARD_STATE`` (a URL, or ``local``), else ``state:`` of the config."""
    env = os.environ.get(STATE_ENV, "").strip()
    if not env:
        return config.state
    if env == "local":
        return None
    base = config.state.model_dump() if config.state else {}
    try:
        return StateConfig.model_validate({**base, "url": env})
    except ValidationError as exc:
        raise ConfigError(f"{STATE_ENV}: {exc.errors()[0]['msg']}") from None


class ModelPool:
    """Providers and runtime state of every configured model, built once per runtime."""

    def __init__(self, config: Config, *, providers: dict[str, Provider] | None = None,
                 states: dict[str, ModelState] | None = None, clock: Clock = loop_clock,
                 shared: StateConfig | None = None, borrow_from: str | os.PathLike[str] | None = None,
                 notice: Callable[[str], None] | None = None):
        self.config = config
        self.clock = clock
        self.providers = providers or {n: build_provider(n, m) for n, m in config.models.items()}
        self.link: RedisLink | None = None
        self.serve: ServeLink | None = None
        settings = shared or (None if states else state_settings(config))
        if settings is None and states is None and borrow_from is not None and not stays_local():
            from modelyard.router.lending.borrower import BorrowedState, ServeLink
            from modelyard.router.lending.registry import discover

            self.serve = serve = ServeLink(Path(borrow_from), discover(borrow_from), notice)
            states = {n: BorrowedState(LocalState(n, m.max_concurrent, config.defaults.cooldown, clock), serve)
                      for n, m in config.models.items()}
        if settings is not None:
            from modelyard.router.shared import RedisLink, RedisState  # redis is imported only when used
            from modelyard.router.shared.namespaces import backend_key, on_each_host

            # Redis's own clock unless a test injected one: loop clocks differ between processes
            self.link = link = RedisLink(settings, None if clock is loop_clock else clock)
            # the embedded model, and a server on each host's loopback: each host has its own (one slot of a host's
            # Ollama at 127.0.0.1 was counted against the other hosts' and one host's failures cooled it for all)
            per_host = {n for n, p in self.providers.items() if on_each_host(p)}
            states = {n: RedisState(n, m.max_concurrent, config.defaults.cooldown, link, clock, per_host=n in per_host,
                                    max_queue=m.max_queue)
                      for n, m in config.models.items()}
            link.limits = {n: m.max_concurrent for n, m in config.models.items()
                           if not self.providers[n].runs_in_process}
            link.per_host = per_host
            link.log_target = dburl.where(config.log.url) if config.log.url else ""
            link.backends = {n: key for n, p in self.providers.items()
                             if (key := backend_key(p, link.host)) is not None}
        #: billed models with a spend cap (None: none has one); the runtime gives it a log reader
        self.spend = spend_caps({n: m.spend_cap for n, m in config.models.items()})
        if self.link is not None:  # the processes sharing the slots share the caps' spend too (shared/spend.py)
            self.link.spend = self.spend
        self.states: dict[str, ModelState] = states or {
            n: LocalState(n, m.max_concurrent, config.defaults.cooldown, clock) for n, m in config.models.items()}

    def __getitem__(self, model: str) -> ModelState:
        return self.states[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self.states)

    def local(self, model: str) -> LocalState:
        """The in-process state of ``model`` (tests and benchmarks look inside it)."""
        state = self.states[model]
        if not isinstance(state, LocalState):
            raise TypeError(f"model {model!r} keeps its state outside this process")
        return state

    def state_status(self) -> LinkStatus | None:
        """The shared store's status (None: the state is in this process)."""
        return self.link.status() if self.link is not None else None

    def describe_state(self) -> str:
        """Where this process's limits live, in a few words (``models``, /healthz, the bot's start line)."""
        if self.link is not None:
            status = self.link.status()
            shown = "unreachable" if not status.up else "up" if status.view_age is not None else "connecting"
            return f"shared through Redis {status.url} ({shown})"
        if self.serve is not None:
            return self.serve.describe()
        return "this process only"

    def join(self) -> None:
        """Take part in the shared state now (``serve`` at start-up), not at the first request: a gateway that has
        served nothing yet is counted among the instances, and its /healthz view is fresh from the start."""
        if self.link is not None:
            self.link.ensure_started()

    async def peek(self) -> None:
        """Read the shared state once, without taking part (for a one-off listing such as ``models``)."""
        if self.link is not None:
            await self.link.peek()
        if self.serve is not None:
            await self.serve.peek()

    def statuses(self) -> list[ModelStatus]:
        out = []
        for name, provider in self.providers.items():
            condition, detail, in_flight, waiting = self.states[name].snapshot()
            # a model over its spend cap is unavailable like one without its key: every view says so
            why = provider.unavailable_reason() or (self.spend.over(name) if self.spend is not None else None)
            if why:
                condition, detail = Condition.UNAVAILABLE, why
            out.append(ModelStatus(name, provider.config.provider, condition, detail, in_flight, waiting,
                                   self.states[name].limit, provider.config.is_local))
        return out

    async def aclose(self) -> None:
        for state in self.states.values():
            await state.aclose()
        if self.link is not None:
            await self.link.aclose()
        if self.serve is not None:
            await self.serve.aclose()
        for provider in self.providers.values():
            await provider.aclose()
