"""Run the logged arrivals through a config's real router, on an event loop with simulated time.

Nothing here re-implements a routing rule: the router, its pool (slots, queue bounds,
breakers), retries and timeouts are the product's own, over :class:`SimulatedProvider`s.
Arrivals are scheduled a page at a time, so memory holds the requests in flight, not the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Iterator

from modelyard.config.schema import Config
from modelyard.errors import ModelyardError
from modelyard.providers import build_provider
from modelyard.replay.collect import Collector
from modelyard.replay.profile import ModelProfile
from modelyard.replay.simulated import CURRENT, SimulatedProvider
from modelyard.replay.source import Arrival
from modelyard.router import ModelPool, Router
from modelyard.router.clock import VirtualTimeLoop
from modelyard.types import ChatRequest, Message

#: arrivals scheduled ahead of simulated time
WINDOW = 2000
_PROMPT = [Message("user", "(replayed request)")]


def scaled(arrivals: Iterable[Arrival], load: float, seed: int) -> Iterator[Arrival]:
    """``load`` × the traffic with the same shape: each arrival repeats ⌊load⌋ times, plus once more with
    probability frac(load), copies shifted by a few seconds so bursts stay bursts, not exact duplicates."""
    rng = random.Random(seed)
    whole, frac = int(load), load - int(load)
    for a in arrivals:
        copies = whole + (1 if rng.random() < frac else 0)
        for k in range(copies):
            yield a if k == 0 else Arrival(f"{a.id}+{k}", a.ts + rng.uniform(0, 2.0), a.agent, a.tokens_in,
                                           a.tokens_out, a.answered)


def _providers(config: Config, profiles: dict[str, ModelProfile], rng: random.Random,
               tokens_out: dict[str, list[int]]) -> dict[str, SimulatedProvider]:
    out = {}
    for name, m in config.models.items():
        try:
            unavailable = build_provider(name, m).unavailable_reason()
        except ModelyardError as exc:
            unavailable = str(exc)
        out[name] = SimulatedProvider(name, m, profiles[name], rng, tokens_out, unavailable)
    return out


async def _drive(router: Router, arrivals: Iterator[Arrival], known: frozenset[str], skipped: dict[str, int]
                 ) -> None:
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task] = set()
    request = ChatRequest(messages=_PROMPT)

    async def one(arrival: Arrival) -> None:
        CURRENT.set(arrival)
        with contextlib.suppress(ModelyardError):  # a chain that could not answer is a figure the sink counted
            await router.complete(arrival.agent, request, request_id=arrival.id)

    def start(arrival: Arrival) -> None:
        task = loop.create_task(one(arrival))
        pending.add(task)
        task.add_done_callback(pending.discard)

    batch: list[Arrival] = []
    for arrival in arrivals:
        if arrival.agent not in known:
            skipped[arrival.agent] = skipped.get(arrival.agent, 0) + 1
            continue
        batch.append(arrival)
        if len(batch) >= WINDOW:
            await _schedule(loop, batch, start)
            batch = []
    await _schedule(loop, batch, start)
    while pending:
        await asyncio.gather(*list(pending))


async def _schedule(loop: asyncio.AbstractEventLoop, batch: list[Arrival], start) -> None:
    """Start each arrival at its logged time, then return once the batch's last one has started."""
    if not batch:
        return
    for arrival in batch:
        loop.call_at(arrival.ts, start, arrival)
    await asyncio.sleep(max(0.0, batch[-1].ts - loop.time()))


def simulate(config: Config, arrivals: Iterable[Arrival], profiles: dict[str, ModelProfile], *, start: float,
             tokens_out: dict[str, list[int]], load: float = 1.0, seed: int = 0
             ) -> tuple[Collector, dict[str, int]]:
    """Replay ``arrivals`` under ``config``; return its figures and the requests of agents it lacks."""
    rng = random.Random(seed)
    local = frozenset(n for n, m in config.models.items() if m.is_local)
    collector = Collector(local)
    pool = ModelPool(config, providers=_providers(config, profiles, rng, tokens_out))
    router = Router(config, pool=pool, sink=collector)
    skipped: dict[str, int] = {}
    loop = VirtualTimeLoop(start)
    try:
        loop.run_until_complete(_drive(router, scaled(arrivals, load, seed), frozenset(config.agents), skipped))
    finally:
        loop.close()
    return collector, skipped
