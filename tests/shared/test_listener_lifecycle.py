"""A grants listener left behind by a loop that stopped without it ends quietly when it is collected.

Clean-clone CI of 2026-11-29 failed in an unrelated test (``test_layers``: "AST constructor recursion depth
mismatch") because such a listener, collected mid-parse, ran on after it was closed: it had been parked in a redis-py
call that turns whatever interrupts it into an error of its own (a disconnect in an ``except BaseException``, which
needs a running loop) — so the GeneratorExit arrived as an ordinary exception, the listener's ``except Exception``
took it, and it went on to ``asyncio.sleep`` outside any loop: "RuntimeError: no running event loop", reported as an
unraisable exception while the AST was being built. The test stands in for that redis-py call (the one outside part
here) and drives modelyard's own listener."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection

from modelyard.router.shared.link import RedisLink
from tests.shared.redis_kit import short_lease


def test_a_listener_abandoned_with_its_loop_closes_without_running_on(redis_url: str, prefix: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    link = RedisLink(short_lease(url=redis_url, prefix=prefix))
    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Task[None]:
        link.ensure_started()
        listener = next(t for t in link._tasks if t.get_name() == "modelyard-state-grants")
        with redis.Redis.from_url(redis_url) as client:
            for _ in range(1000):  # until it is subscribed and waiting for a message
                await asyncio.sleep(0.01)
                if client.pubsub_numsub(link.channel)[0][1]:
                    break
        return listener

    real_get_message = PubSub.get_message

    async def get_message_that_converts_its_exit(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        try:
            return await real_get_message(self, *args, **kwargs)
        except BaseException:
            asyncio.get_running_loop()  # redis-py's disconnect-and-reraise: outside a loop this raises RuntimeError
            raise

    monkeypatch.setattr(PubSub, "get_message", get_message_that_converts_its_exit)
    listener = loop.run_until_complete(start())
    assert not listener.done()
    # only the listener is left behind: the heartbeat task would otherwise be destroyed pending with the loop
    maintain = next(t for t in link._tasks if t is not listener)
    # Cancelled until it has ended: redis-py sends each command under asyncio.wait_for, which on Python 3.11 drops a
    # cancel that lands as the send completes (CPython gh-86296; 3.12's wait_for is asyncio.timeout's) — the heartbeat
    # then beat on and a single cancel's wait never ended (3 runs in 11 pinned to one core at load ~9). aclose() has a
    # flag for that, which would stop the listener too; here the listener must stay parked.
    while not maintain.done():
        maintain.cancel()
        loop.run_until_complete(asyncio.wait([maintain], timeout=1))
    coro = listener.get_coro()
    try:
        coro.close()  # what the garbage collector does to a coroutine left pending; must not raise
    finally:
        monkeypatch.undo()
        listener._log_destroy_pending = False  # type: ignore[attr-defined]  # its coroutine is closed: no "destroyed but pending"
        assert link._client is not None
        loop.run_until_complete(link._client.aclose())  # this test's sockets, not the next test's ResourceWarning
        loop.close()


def test_a_heartbeat_abandoned_mid_call_with_its_loop_closes_without_running_on(
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for the other background task: the heartbeat, collected while it waits for a store that has not
    answered yet, took the converted exit for a bug of its own ("shared state maintenance failed") and went on to
    its pause — ``asyncio.timeout`` outside any loop, the same unraisable RuntimeError."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog) and never answers
    port = silent.getsockname()[1]
    link = RedisLink(short_lease(url=f"redis://127.0.0.1:{port}/0", prefix=prefix, timeout=10))
    loop = asyncio.new_event_loop()
    real_read_response = Connection.read_response
    parked = asyncio.Event()

    async def read_response_that_converts_its_exit(self: Connection, *args: Any, **kwargs: Any) -> Any:
        try:
            parked.set()
            return await real_read_response(self, *args, **kwargs)
        except BaseException:
            asyncio.get_running_loop()  # redis-py's disconnect-and-reraise: outside a loop this raises RuntimeError
            raise

    monkeypatch.setattr(Connection, "read_response", read_response_that_converts_its_exit)

    async def start() -> asyncio.Task[None]:
        link.ensure_started()
        maintain = next(t for t in link._tasks if t.get_name() == "modelyard-state-maintain")
        for task in link._tasks:
            if task is not maintain:
                task.cancel()
        await asyncio.wait_for(parked.wait(), 30)  # waiting for the store's first answer
        await asyncio.sleep(0.05)
        return maintain

    try:
        maintain = loop.run_until_complete(start())
        assert not maintain.done()
        coro = maintain.get_coro()
        try:
            coro.close()  # what the garbage collector does to a coroutine left pending; must not raise
        finally:
            maintain._log_destroy_pending = False  # type: ignore[attr-defined]  # its coroutine is closed
    finally:
        monkeypatch.undo()
        if link._client is not None:
            loop.run_until_complete(link._client.aclose())
        loop.close()
        silent.close()
