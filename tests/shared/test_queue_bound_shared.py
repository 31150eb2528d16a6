"""``max_queue`` holds across processes sharing one Redis, also for a burst.

``queue_full`` answers from the view each process reads every ``refresh``: requests that came within one refresh
all read the queue as it was before them, all found room, and all queued — from two processes, and from one alone.
The store now checks the bound itself when it queues a request (ACQUIRE), so the requests past it move on at once
with ``queue_full``, whichever process they came through, as the in-process state does.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis

from modelyard.errors import Reason
from modelyard.router import ModelState
from modelyard.router.shared import RedisState
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, counts
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture

MAX_QUEUE = 1


def _config():  # a server on the network: its slots are shared by every host
    return make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 1,
                              "max_queue": MAX_QUEUE}}, {"a": {"primary": "m"}})


async def _ask(state: ModelState) -> str:
    """What the router does with a model that has ``max_queue`` (router.py): ask queue_full, then take a slot."""
    if state.queue_full(MAX_QUEUE):
        return "queue_full"
    try:
        await state.acquire(5)
    except QueueTimeout as exc:
        return exc.reason.value
    await asyncio.sleep(0.05)
    await state.release()
    return "served"


async def test_a_burst_from_two_processes_queues_no_more_than_max_queue(pools: Pools,  # noqa: F811 - fixture
                                                                       prefix: str) -> None:
    a, b = (pool["m"] for pool in pools(2, models=_config()))
    await a.acquire(5)
    await _until(lambda: b.snapshot()[2] == 1 and a.snapshot()[2] == 1)  # both views: the slot busy, nobody waiting
    burst = asyncio.gather(*(_ask(state) for state in (a, a, a, b, b, b)))
    most = 0

    async def watch() -> None:
        nonlocal most
        while not burst.done():
            most = max(most, counts(prefix, "m")[1])
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    await _until(lambda: counts(prefix, "m")[1] >= 1)
    await asyncio.sleep(0.3)  # three refreshes: every request of the burst has asked the store
    await a.release()
    said = await burst
    await watcher
    assert most == MAX_QUEUE, f"{most} waited in the store, max_queue {MAX_QUEUE}: {said}"
    assert sorted(said) == ["queue_full"] * 5 + ["served"], said
    assert all(s in (Reason.QUEUE_FULL.value, "served") for s in said)


async def test_the_bound_holds_through_a_redis_restarted_empty(pools: Pools,  # noqa: F811 - fixture
                                                               tmp_path: Path) -> None:
    """Redis restarted empty (no persistence, as the README's own command) while one process holds the only slot and
    both send bursts: the store never holds more than ``max_queue`` waiters (the holder registers itself again within
    the grace, and the bound is counted in the new store as in the old), and every request ends with a clear outcome
    — served, moved on with queue_full, or with state_unreachable while its process counts Redis down."""
    server = PrivateRedis(tmp_path).start()
    try:
        a, b = (pool["m"] for pool in pools(2, url=server.url, timeout=1.0, models=_config()))
        assert isinstance(a, RedisState)
        queue = a._slots[1]
        await a.acquire(5)
        await _until(lambda: b.snapshot()[2] == 1)
        most = 0
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal most
            while not stop.is_set():
                with contextlib.suppress(redis.RedisError), \
                        contextlib.closing(redis.Redis(port=server.port, socket_timeout=1)) as admin:
                    most = max(most, admin.zcard(queue))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        first = asyncio.gather(*(_ask(state) for state in (a, b, b)))
        await asyncio.sleep(0.2)
        server.kill()
        again = PrivateRedis(tmp_path)
        again.port = server.port
        server = again.start()
        await asyncio.sleep(0.3)
        second = asyncio.gather(*(_ask(state) for state in (a, a, b, b)))
        await asyncio.sleep(1.0)
        await a.release()
        said = [*await first, *await second]
        stop.set()
        await watcher
        assert most <= MAX_QUEUE, f"{most} waited in the store, max_queue {MAX_QUEUE}: {said}"
        assert set(said) <= {"served", Reason.QUEUE_FULL.value, Reason.STATE_UNREACHABLE.value,
                             Reason.QUEUE_TIMEOUT.value}, said
    finally:
        server.kill()
