"""A slot granted through Redis while the waiter's loop was kept from running past its queue bound: the waiter keeps it.

The watchdog's race (tests/unit/test_watchdog_stalled_loop.py) in the shared slot wait: a busy machine gives the
waiting process no CPU while another process releases the slot, and Redis hands it to the waiter (its grant published
on the grant channel). The turn the loop gets back reads both the grant's bytes and the waiter's queue-bound timer —
and the grant listener's own read bound (redis-py's, one tick), also past, which cancels that read: the grant is read
turns later, after a ping. The old bound (``asyncio.timeout_at``) ended the waiter first: the slot went back unused and
the request fell back (``queue_timeout``) with a slot granted to it. Now the waiter asks Redis at its bound whether the
slot is its already (WITHDRAW). The holder here is another pool on a loop of its own in a thread (its own connection,
instance, heartbeat and listener, as another process has); the waiter's loop is stalled by a callback that has the
holder release and then ``time.sleep``s past the bound (the machine's scheduler, made deterministic).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis

from modelyard.gateway.loop import ServeLoop
from modelyard.router import ModelPool
from modelyard.router.shared import RedisState
from modelyard.router.shared.link import grant_channel
from modelyard.router.slots import QueueTimeout
from tests.shared.redis_kit import counts, short_lease
from tests.shared.test_redis_state import config

BOUND = 0.3
#: the waiter's loop gets no CPU this long once the holder released: well past the waiter's bound
STALL = BOUND + 0.3
T = TypeVar("T")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop, "serve": ServeLoop}


class _OtherProcess:
    """A pool on an event loop of its own, in a thread: what another process is to the store."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _subscribed(url: str, prefix: str) -> int:
    with contextlib.closing(redis.Redis.from_url(url)) as admin:
        return int(dict(admin.pubsub_numsub(grant_channel(prefix)))[grant_channel(prefix).encode()])


@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_a_grant_read_in_the_turn_the_bound_runs_out_goes_to_the_waiter(loop_kind: str, redis_url: str,
                                                                         prefix: str) -> None:
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=1.0)
    other = _OtherProcess()

    async def build() -> ModelPool:
        return ModelPool(config(limit=1), shared=settings)

    holder_pool = other.run(build())
    holder = holder_pool["m"]

    async def main(loop: asyncio.AbstractEventLoop) -> tuple[str, int]:
        pool = ModelPool(config(limit=1), shared=settings)
        waiter = pool["m"]
        assert isinstance(waiter, RedisState)
        try:
            await waiter.acquire(5)  # connected, scripts loaded, then given back: the next acquire only queues
            await waiter.release()
            other.run(holder.acquire(5))
            deadline = time.monotonic() + 10
            while await asyncio.to_thread(_subscribed, redis_url, prefix) < 2:  # both listeners hear grants
                assert time.monotonic() < deadline, "the grant listeners never subscribed"
                await asyncio.sleep(0.01)
            queued = asyncio.Event()
            call = waiter.link.call

            async def noted(script: str, *args: Any, **kwargs: Any) -> Any:
                out = await call(script, *args, **kwargs)
                if script == "ACQUIRE":
                    queued.set()
                return out

            waiter.link.call = noted  # type: ignore[method-assign]
            wait = asyncio.ensure_future(waiter.acquire(BOUND))
            await asyncio.wait_for(queued.wait(), 5)
            assert waiter.waiting, "queued in Redis, waiting for its grant"

            def stall() -> None:  # the holder releases while this loop is kept from running past the bound
                other.run(holder.release())
                time.sleep(STALL)

            loop.call_soon(stall)
            try:
                await asyncio.wait_for(wait, 10)
                outcome = "held"
            except QueueTimeout:
                outcome = "queue_timeout"
            held = len(waiter.held)
            await waiter.release()
            return outcome, held
        finally:
            await pool.aclose()

    loop = LOOPS[loop_kind]()
    try:
        outcome, held = loop.run_until_complete(main(loop))
    finally:
        loop.close()
        other.run(holder_pool.aclose())
        other.stop()
    assert (outcome, held) == ("held", 1)
    assert counts(prefix, "m") == (0, 0)  # given back once: nothing left held or queued
