"""Load local models before the first request needs them, and keep them loaded.

A cold local model costs seconds to tens of seconds on the first request of the day (Ollama
unloads after its ``keep_alive``, 5 min by default). ``warmup`` loads every local model once —
one after another, since loading in parallel only fights over disk and memory bandwidth — and
``keep_warm`` repeats that in ``serve`` mode, so Ollama's keep-alive timer never runs out (each model on its
own timer there, so one that hangs does not hold the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.errors import ProviderError, Reason
from modelyard.providers import Provider
from modelyard.providers.http import NO_MEMORY_WORDS
from modelyard.router.slots import QueueTimeout

if TYPE_CHECKING:
    from modelyard.router.shared import RedisLink
    from modelyard.router.state import ModelState
    from modelyard.runtime import Runtime

log = logging.getLogger("modelyard.warmup")

DEFAULT_INTERVAL = 600.0


@dataclass
class WarmResult:
    model: str
    ok: bool
    seconds: float
    detail: str = ""


#: what to do about a model the server has no memory to load (Ollama's "model requires more system memory (240 GiB)
#: than is available (20 GiB)"): the warm-up said Ollama's words alone, and a model too big for the machine fails
#: every keep-warm round the same way
NO_ROOM_ADVICE = (" — the server has no memory for it now: stop the models holding it (`ollama ps`, `ollama stop "
                  "NAME`), or lower models.{model}.context or pick a smaller quantization; `modelyard plan` says what "
                  "fits this machine")


def warmable(providers: dict[str, Provider]) -> list[str]:
    """Local models whose provider really loads something on warm-up (OpenAI-compatible servers
    manage their own loading)."""
    return [n for n, p in providers.items() if p.config.is_local and p.preloads]


async def warm_one(provider: Provider, keep_alive: str | None = None) -> WarmResult:
    """Load one model; failures become a result (a warm-up must never crash its caller)."""
    start = time.perf_counter()
    why = provider.unavailable_reason()
    if why:
        return WarmResult(provider.name, False, 0.0, why)
    try:
        await provider.warmup(keep_alive)
    except ProviderError as exc:
        said = f"{exc.reason}: {exc.message}"
        if exc.reason is Reason.MODEL_MISSING:  # "try pulling it first": which pull, and what the server has
            with contextlib.suppress(ProviderError):
                said = f"{exc.reason}: {await provider.not_served() or exc.message}"
        elif exc.reason is Reason.OVERLOADED and NO_MEMORY_WORDS.search(exc.message):
            said += NO_ROOM_ADVICE.format(model=provider.name)
        return WarmResult(provider.name, False, time.perf_counter() - start, said)
    except Exception as exc:  # e.g. a corrupt GGUF: report it, keep going with the next model
        return WarmResult(provider.name, False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return WarmResult(provider.name, True, time.perf_counter() - start)


async def warm_all(providers: dict[str, Provider], names: list[str] | None = None, *,
                   on_start: Callable[[str], None] | None = None,
                   on_done: Callable[[WarmResult], None] | None = None) -> list[WarmResult]:
    """Warm the given (default: every warmable) model in turn."""
    results = []
    for name in names if names is not None else warmable(providers):
        if on_start:
            on_start(name)
        result = await warm_one(providers[name])
        results.append(result)
        if on_done:
            on_done(result)
    return results


def default_interval(runtime: Runtime) -> float:
    """``gateway.keep_alive_interval``, else half the shortest local keep-alive, else 10 minutes."""
    configured = runtime.config.gateway.keep_alive_interval
    if configured:
        return float(configured)
    alive = [d for p in runtime.router.providers.values() if p.config.is_local
             if (d := p.keep_alive_seconds())]
    return max(5.0, min(alive) / 2) if alive else DEFAULT_INTERVAL


#: the longest one model's keep-warm waits for another model's warm-up before it warms alongside: loads go one at a
#: time while they are quick, but one that hangs (an Ollama that accepts and never answers holds a warm-up for its
#: 300 s bound) no longer holds every other model's refresh until its keep-alive has run out and it unloads
WARM_PATIENCE = 30.0
#: the longest a preload waits for one of its model's slots: past it the round is skipped (the requests holding them
#: keep the model loaded), never queued behind them
SLOT_WAIT = 1.0


async def keep_warm(runtime: Runtime, interval: float | None = None, *,
                    on_result: Callable[[WarmResult], None] | None = None) -> None:
    """Re-warm every local model of ``runtime`` every ``interval`` seconds, until cancelled.

    For ``serve``: ``task = asyncio.create_task(keep_warm(runtime))``; cancel the task on shutdown.
    The first round runs at once, so the models are loaded right after start-up. Uses the
    runtime's own providers, so in-process llama.cpp models load into the serving process.

    Each model keeps its own time: one after another, a warm-up that hung delayed the next model's by its whole
    bound (300 s for Ollama), past the keep-alive the interval is derived from. Warm-ups still take turns, but a
    model waits for its turn at most :data:`WARM_PATIENCE` seconds (and half its interval).
    """
    every = interval if interval is not None else default_interval(runtime)
    providers = runtime.router.providers
    turn = asyncio.Lock()
    patience = min(WARM_PATIENCE, every / 2)
    link = runtime.pool.link
    loop = asyncio.get_running_loop()

    async def keep(name: str) -> None:
        provider, state = providers[name], runtime.pool[name]
        # the model's keep-alive, else the interval (at most half of it by default): an answer within it kept it loaded
        alive = provider.keep_alive_seconds() or every
        seen, seen_at = -1, 0.0  # the answers counted at the last look, and when (-1: not looked yet)
        since: float | None = None  # its last answer came after this moment (a look that counted none yet)
        while True:
            now = loop.time()
            if state.answered != seen:
                since = seen_at if seen >= 0 else None
                seen = state.answered
            seen_at = now
            answered = since is not None and now - since < alive
            if await _ours(link, name, every):
                result = await _warm_in_turn(provider, state, turn, patience, answered)
                if result is not None:
                    if not result.ok:
                        log.warning("keep-warm %s failed: %s", name, result.detail)
                    if on_result:
                        on_result(result)
            await asyncio.sleep(every)

    names = warmable(providers)
    if not names:
        await asyncio.Event().wait()  # nothing to keep warm: idle until cancelled, as the loop did
    async with asyncio.TaskGroup() as group:
        for name in names:
            group.create_task(keep(name), name=f"modelyard-keep-warm-{name}")


#: a round's claim on a shared server lasts this share of the interval: the claimer's next round finds it gone and
#: claims again; when the claimer is gone, another takes the round within this much — the model is warmed at least
#: every 1.8 intervals (the interval is half the keep-alive by default)
CLAIM_SHARE = 0.8


async def _ours(link: RedisLink | None, name: str, every: float) -> bool:
    """Whether this process warms ``name`` this round. Processes sharing Redis that keep the same server's model
    warm (two gateways in front of one Ollama) take turns through a claim: each warmed it every round, N gateways
    N preloads an interval. A model in each process (the embedded one) is every process's own to warm."""
    if link is None or name not in link.backends:
        return True
    return await link.claim(f"warm:{link.backends[name]}", every * CLAIM_SHARE)


def _warm_already(state: ModelState, answered: bool) -> str:
    """Why ``state``'s model needs no preload now ("" when it does): a request holds it loaded, or one ended within
    its keep-alive (which restarted Ollama's timer). Its preload would only be one request more on the backend."""
    in_flight = state.snapshot()[2]
    if in_flight:
        return f"{in_flight} request{'s' if in_flight != 1 else ''} in flight"
    if answered:
        return "it answered since the last round, within its keep-alive"
    return ""


async def _warm_in_turn(provider: Provider, state: ModelState, turn: asyncio.Lock, patience: float,
                        answered: bool) -> WarmResult | None:
    """:func:`warm_one` once the warm-up before it ends, or once ``patience`` runs out (then alongside it); None when
    the model is warm already or every slot is busy (said at debug level). A preload to a server is a request like
    any other: it takes one of the model's ``max_concurrent`` slots, for at most :data:`SLOT_WAIT` — it went out
    while every slot was in use, and the backend saw max_concurrent + 1. The embedded model's load takes none."""
    if why := _warm_already(state, answered):
        log.debug("keep-warm %s skipped: %s", provider.name, why)
        return None
    held = False
    with contextlib.suppress(TimeoutError):
        held = await asyncio.wait_for(turn.acquire(), patience)
    try:
        if provider.runs_in_process:
            return await warm_one(provider)
        try:
            await state.acquire(SLOT_WAIT)
        except QueueTimeout:
            log.debug("keep-warm %s skipped this round: every one of its %d slots busy", provider.name, state.limit)
            return None
        try:
            return await warm_one(provider)
        finally:
            await state.release()
    finally:
        if held:
            turn.release()
