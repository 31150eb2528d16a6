"""A call to Redis in flight while the process does not run (SIGSTOP, ``docker pause``, a VM paused, a loop blocked)
is judged on the time the process ran, not on the wall clock: its reply, waiting in the socket when the process runs
again, is taken.

Seen in CI (``test_loop_stall``'s waiter, stopped while it waited for a slot and continued): the heartbeat's call was
in flight at the stop; ``asyncio.timeout`` fell due while the process was stopped, and at SIGCONT the loop read the
reply and ran the expired timer in the same pass — the timer's cancel won. The link was marked down ("no answer within
1s — Redis hung or slow") with Redis answering, and the waiting request failed with the outage's refusal. Here the
stop is the test's own loop blocked (``time.sleep`` on it: nothing on the loop runs, as under SIGSTOP) and the reply
comes from a real socket or a real Redis that was frozen and thawed meanwhile.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from modelyard.router import ModelPool
from modelyard.router.shared import RedisState
from modelyard.router.shared.bounds import within
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, short_lease


async def _read_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    async with within(seconds):
        return await reader.readline()


async def _pair() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    return reader, writer, theirs


async def test_a_reply_that_came_while_the_process_did_not_run_is_taken() -> None:
    reader, writer, server = await _pair()
    try:
        call = asyncio.create_task(_read_within(reader, 0.2))
        await asyncio.sleep(0.05)  # sent, waiting for the answer
        server.sendall(b"ok\n")  # the store answers at once …
        time.sleep(0.6)  # … while this process does not run, until well past the bound
        assert await call == b"ok\n"
    finally:
        writer.close()
        server.close()


async def test_a_reply_read_in_the_same_pass_as_a_timer_just_due_is_taken() -> None:
    """Stopped across the deadline by less than a quarter of the bound: no new bound, and the reply that came in the
    meantime is read before the cancel goes out."""
    reader, writer, server = await _pair()
    try:
        call = asyncio.create_task(_read_within(reader, 1.0))
        await asyncio.sleep(0.05)
        server.sendall(b"ok\n")
        time.sleep(1.05)  # the deadline falls due 0.05 s before this process runs again
        assert await call == b"ok\n"
    finally:
        writer.close()
        server.close()


async def test_a_store_that_does_not_answer_still_costs_the_bound() -> None:
    reader, writer, server = await _pair()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await _read_within(reader, 0.2)
        assert 0.2 <= time.monotonic() - started < 1.0
        # and a process stopped for good measure gets the bound once more after it runs again, not forever
        call = asyncio.create_task(_read_within(reader, 0.2))
        await asyncio.sleep(0.05)
        time.sleep(0.6)
        resumed = time.monotonic()
        with pytest.raises(TimeoutError):
            await call
        assert 0.15 <= time.monotonic() - resumed < 1.0
    finally:
        writer.close()
        server.close()


async def test_a_cancel_from_outside_is_a_cancel_not_a_timeout() -> None:
    reader, writer, server = await _pair()
    try:
        call = asyncio.create_task(_read_within(reader, 5.0))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # an outer, shorter bound still ends the call, as its own timeout
            async with asyncio.timeout(0.1):
                await _read_within(reader, 5.0)
        assert time.monotonic() - started < 1.0
    finally:
        writer.close()
        server.close()


async def test_a_redis_call_in_flight_across_a_stop_keeps_the_link_up(tmp_path: Path, prefix: str) -> None:
    """A real Redis, frozen while the call is sent and thawed 0.1 s later (it answers then); this process does not run
    for three times the call's bound meanwhile. Before, the call timed out when the process ran again and the link
    went down with Redis answering."""
    server = PrivateRedis(tmp_path).start()
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 1}},
                         {"a": {"primary": "m"}})
    pool = ModelPool(config, shared=short_lease(url=server.url, prefix=prefix, lease=3, refresh=0.1, timeout=0.5))
    try:
        state = pool["m"]
        assert isinstance(state, RedisState)
        await state.acquire(5)
        await state.release()
        assert state.link.up
        server.freeze()
        call = asyncio.create_task(state.link.call("VIEW", *state.view_call()))
        await asyncio.sleep(0.05)  # the call is at the frozen server
        threading.Timer(0.1, server.thaw).start()
        time.sleep(1.5)  # this process does not run; Redis answers at 0.1 s
        assert isinstance(await call, list)
        assert state.link.up, state.link.down_reason
    finally:
        server.thaw()
        await pool.aclose()
        server.kill()
