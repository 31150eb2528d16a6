"""Run the logged arrivals through a config's real router, on an event loop with simulated time.

Nothing here re-implements a routing rule: the router, its pool (slots, queue bounds,
breakers), retries and timeouts are the product's own, over :class:`SimulatedProvider`s.
Arrivals are scheduled a page at a time, so memory holds the requests in flight, not the log.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Iterable, Iterator

from modelyard.config.schema import Config
from modelyard.errors import ModelyardError
from modelyard.providers import build_provider
from modelyard.providers.base import Provider
from modelyard.replay.collect import Collector
from modelyard.replay.profile import ModelProfile
from modelyard.replay.simulated import CURRENT, SimulatedProvider
from modelyard.replay.source import Arrival
from modelyard.router import ModelPool, Router
from modelyard.router.clock import VirtualTimeLoop
from modelyard.router.pool import LocalState
from modelyard.router.state import ModelState
from modelyard.types import ChatRequest, Message

#: how far a copy of an arrival may move in time when traffic is scaled up
JITTER_S = 2.0
_PROMPT = [Message("user", "(replayed request)")]


def scaled(arrivals: Iterable[Arrival], load: float, seed: int) -> Iterator[Arrival]:
    """``load`` × the traffic with the same shape: each arrival repeats ⌊load⌋ times, plus once more with
    probability frac(load), copies shifted by up to :data:`JITTER_S` so bursts stay bursts, not exact
    duplicates. Still in time order (copies wait in a small heap until their time comes)."""
    return iter(arrivals) if load == 1.0 else _copies(arrivals, load, seed)


def _copies(arrivals: Iterable[Arrival], load: float, seed: int) -> Iterator[Arrival]:
    rng = random.Random(seed)
    whole, frac = int(load), load - int(load)
    later: list[tuple[float, int, Arrival]] = []
    n = 0
    for a in arrivals:
        while later and later[0][0] <= a.ts:
            yield heapq.heappop(later)[2]
        copies = whole + (1 if rng.random() < frac else 0)
        for k in range(copies):
            if k == 0:
                copy = a
            else:
                copy = Arrival(f"{a.id}+{k}", a.ts + rng.uniform(0, JITTER_S), a.agent, a.tokens_in, a.tokens_out,
                               a.answered, cache_read=a.cache_read, cache_write=a.cache_write,
                               cache_write_1h=a.cache_write_1h)
            n += 1
            heapq.heappush(later, (copy.ts, n, copy))
    while later:
        yield heapq.heappop(later)[2]


def _providers(config: Config, profiles: dict[str, ModelProfile], rng: random.Random,
               tokens_out: dict[str, list[int]], speed: float) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    for name, m in config.models.items():
        try:
            unavailable = build_provider(name, m).unavailable_reason()
        except ModelyardError as exc:
            unavailable = str(exc)
        out[name] = SimulatedProvider(name, m, profiles[name], rng, tokens_out, unavailable, speed)
    return out


async def _drive(router: Router, arrivals: Iterator[Arrival], known: frozenset[str], skipped: dict[str, int]
                 ) -> None:
    """Start each arrival at its logged time. One timer at a time, each arrival's callback arming the next:
    the loop's heap holds what is in flight, not the log."""
    loop = asyncio.get_running_loop()
    in_flight = 0
    exhausted = False  # every arrival has been scheduled
    finished = loop.create_future()
    request = ChatRequest(messages=_PROMPT)
    #: the tasks in flight, by their arrival's id (the loop keeps tasks only weakly)
    running: dict[int, asyncio.Task[None]] = {}

    async def one(arrival: Arrival) -> None:
        nonlocal in_flight
        CURRENT.set(arrival)  # in this request's own task context: the simulated providers read it
        try:
            await router.complete(arrival.agent, request, request_id=arrival.id)
        except ModelyardError:
            pass  # a chain that could not answer is a figure the sink already counted
        except Exception as exc:
            if not finished.done():
                finished.set_exception(exc)  # a bug, not a figure: stop the replay
        finally:
            del running[id(arrival)]
            in_flight -= 1
            if in_flight == 0 and exhausted and not finished.done():
                finished.set_result(None)

    def start(arrival: Arrival) -> None:
        nonlocal in_flight
        # the task takes itself out when it ends; made as loop.create_task makes it, less a Python call
        running[id(arrival)] = asyncio.Task(one(arrival), loop=loop)
        in_flight += 1
        arm()

    def arm() -> None:
        nonlocal exhausted
        for arrival in arrivals:
            if arrival.agent in known:
                loop.call_at(arrival.ts, start, arrival)
                return
            skipped[arrival.agent] = skipped.get(arrival.agent, 0) + 1
        exhausted = True
        if in_flight == 0 and not finished.done():
            finished.set_result(None)

    arm()
    await finished


def simulate(config: Config, arrivals: Iterable[Arrival], profiles: dict[str, ModelProfile], *, start: float,
             tokens_out: dict[str, list[int]], load: float = 1.0, speed: float = 1.0, seed: int = 0,
             bucket_s: float = 3600.0) -> tuple[Collector, dict[str, int]]:
    """Replay ``arrivals`` under ``config``; return its figures and the requests of agents it lacks."""
    rng = random.Random(seed)
    local = frozenset(n for n, m in config.models.items() if m.is_local)
    collector = Collector(local, bucket_s)
    # the state in this process, whatever the config's `state:` says: simulated requests must never take the
    # team's real slots in Redis (nor time out on it: simulated time jumps past every bound of a real call)
    states: dict[str, ModelState] = {n: LocalState(n, m.max_concurrent, config.defaults.cooldown)
                                     for n, m in config.models.items()}
    pool = ModelPool(config, providers=_providers(config, profiles, rng, tokens_out, speed), states=states)
    router = Router(config, pool=pool, sink=collector)
    skipped: dict[str, int] = {}
    loop = VirtualTimeLoop(start)
    if pool.spend is not None:  # a candidate's spend caps count simulated spend in simulated days
        pool.spend.wall = loop.time
    try:
        loop.run_until_complete(_drive(router, scaled(arrivals, load, seed), frozenset(config.agents), skipped))
    finally:
        loop.close()
    return collector, skipped
