"""Load local models before the first request needs them, and keep them loaded.

A cold local model costs seconds to tens of seconds on the first request of the day (Ollama
unloads after its ``keep_alive``, 5 min by default). ``warmup`` loads every local model once —
one after another, since loading in parallel only fights over disk and memory bandwidth — and
``keep_warm`` repeats that in ``serve`` mode, so Ollama's keep-alive timer never runs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.errors import ProviderError
from modelyard.providers import Provider

if TYPE_CHECKING:
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


async def keep_warm(runtime: Runtime, interval: float | None = None, *,
                    on_result: Callable[[WarmResult], None] | None = None) -> None:
    """Re-warm every local model of ``runtime`` every ``interval`` seconds, until cancelled.

    For ``serve``: ``task = asyncio.create_task(keep_warm(runtime))``; cancel the task on shutdown.
    The first round runs at once, so the models are loaded right after start-up. Uses the
    runtime's own providers, so in-process llama.cpp models load into the serving process.
    """
    every = interval if interval is not None else default_interval(runtime)
    providers = runtime.router.providers
    while True:
        for name in warmable(providers):
            result = await warm_one(providers[name])
            if not result.ok:
                log.warning("keep-warm %s failed: %s", name, result.detail)
            if on_result:
                on_result(result)
        await asyncio.sleep(every)
