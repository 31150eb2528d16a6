"""A provider that behaves as the log says a model behaved — in simulated time.

It sleeps for a sampled TTFT, streams the logged answer's length at a sampled rate (in steps
short enough that the candidate's idle bound judges real silences only), and fails when the
model's logged condition at that moment says it failed: after its measured time to fail, or
by going silent so that the candidate's own first-token or idle bound decides.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncGenerator
from contextvars import ContextVar

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.base import Provider
from modelyard.providers.embed_batches import Lanes
from modelyard.replay.profile import ModelProfile
from modelyard.replay.source import Arrival
from modelyard.router.clock import VirtualTimeLoop, running_loop
from modelyard.types import ChatRequest, Chunk, Usage

#: the logged request a simulated call stands for (set per arrival; tasks inherit it)
CURRENT: ContextVar[Arrival] = ContextVar("modelyard_replay_arrival")
#: output length when the logged request got no answer to copy
DEFAULT_TOKENS_OUT = 200
_FOREVER = 10 * 365 * 86400.0


class SimulatedProvider(Provider):
    def __init__(self, name: str, config: ModelConfig, profile: ModelProfile, rng: random.Random,
                 tokens_out: dict[str, list[int]], unavailable: str | None = None, speed: float = 1.0):
        super().__init__(name, config)
        #: "what if the models ran this much faster": divides TTFT, multiplies tokens/s
        self.speed = speed
        self.sim = profile
        self.rng = rng
        #: answered output lengths per agent, for requests the log has no answer for
        self.tokens_out = tokens_out
        #: what the real provider says here and now (a key not set is skipped in the replay too)
        self._unavailable = unavailable

    def unavailable_reason(self) -> str | None:
        return self._unavailable

    def chunks(self, request: ChatRequest, timeouts: Timeouts, *, buffered: bool = False,
               lanes: Lanes | None = None) -> AsyncGenerator[Chunk, None]:
        """No shape checks: these chunks are made here, not parsed from a wire (providers/shapes.py guards
        what a backend sends; a million simulated answers would pay for it and find nothing)."""
        return self.stream(request, timeouts)

    def _length(self, arrival: Arrival) -> int:
        if arrival.tokens_out:
            return arrival.tokens_out
        lengths = self.tokens_out.get(arrival.agent)
        return lengths[int(self.rng.random() * len(lengths))] if lengths else DEFAULT_TOKENS_OUT

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        arrival = CURRENT.get()
        sim, rng = self.sim, self.rng
        loop = running_loop()
        sleep = loop.sleep if isinstance(loop, VirtualTimeLoop) else asyncio.sleep
        fate = sim.fate(rng, loop.time())
        if fate is Reason.FIRST_TOKEN_TIMEOUT:
            await sleep(_FOREVER)
        if fate is not None and fate is not Reason.IDLE_TIMEOUT and fate not in _MID_STREAM:
            await sleep(sim.sample_fail_after(rng, fate))
            raise ProviderError(fate, "as logged")
        own = arrival.model == self.name  # the model that answered it in the log: its own times, not a draw
        await sleep((arrival.ttft if own else sim.sample_ttft(rng, arrival.tokens_in)) / self.speed)
        tokens = self._length(arrival)
        yield _TEXT
        if fate is not None:  # went silent, or broke off, after the first token
            if fate is Reason.IDLE_TIMEOUT:
                await sleep(_FOREVER)
            await sleep(sim.sample_fail_after(rng, fate))
            raise ProviderError(fate, "as logged")
        tps = arrival.tokens_per_s if own and arrival.tokens_per_s else sim.sample_tps(rng)
        remaining = max(0, tokens - 1) / max(tps * self.speed, 0.01)
        step = timeouts.idle * 0.9
        while remaining > step:  # a long answer streams on; only a real silence trips the idle bound
            await sleep(step)
            remaining -= step
            yield _TEXT
        if remaining > 0:
            await sleep(remaining)
        # its prompt cache is at the model that answered it in the log: sent elsewhere, the prompt is read whole
        yield _usage(arrival.tokens_in, tokens, arrival.cache_read, arrival.cache_write,
                     arrival.cache_write_1h) if own \
            else _usage(arrival.tokens_in, tokens)
        # no "done" chunk: its stop reason counts in no replayed figure, and each chunk passes through
        # every layer of the router (2% of a replay)


#: the chunk every simulated answer shares (nothing downstream changes a chunk)
_TEXT = Chunk("text", text="·")


@functools.lru_cache(maxsize=65536)
def _usage(tokens_in: int, tokens_out: int, cache_read: int = 0, cache_write: int = 0, cache_write_1h: int = 0
           ) -> Chunk:
    """The usage chunk for these sizes, made once: a log holds a few hundred distinct pairs, not a million. The
    cache counts as logged, so the router prices the simulated answer as it priced the real one (Price.cost)."""
    return Chunk("usage", usage=Usage(tokens_in, tokens_out, cache_read, cache_write,
                                      cache_write_1h_tokens=cache_write_1h))
_MID_STREAM = frozenset({Reason.STREAM_ERROR, Reason.CONNECTION_DROPPED})
