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

from modelyard.errors import ProviderError
from modelyard.providers import Provider

if TYPE_CHECKING:
    from modelyard.router.shared import RedisLink
    from modelyard.runtime import Runtime

log = logging.getLogger("modelyard.warmup")

DEFAULT_INTERVAL = 600.0


@dataclass
class WarmResult:
    model: str
    ok: bool
    seconds: float
    detail: str = ""


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
        return WarmResult(provider.name, False, time.perf_counter() - start, f"{exc.reason}: {exc.message}")
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

    async def keep(name: str) -> None:
        while True:
            if await _ours(link, name, every):
                result = await _warm_in_turn(providers[name], turn, patience)
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


async def _warm_in_turn(provider: Provider, turn: asyncio.Lock, patience: float) -> WarmResult:
    """:func:`warm_one` once the warm-up before it ends, or once ``patience`` runs out (then alongside it)."""
    held = False
    with contextlib.suppress(TimeoutError):
        held = await asyncio.wait_for(turn.acquire(), patience)
    try:
        return await warm_one(provider)
    finally:
        if held:
            turn.release()
