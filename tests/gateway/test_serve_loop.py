"""``modelyard serve``'s event loop (gateway/loop.py): asyncio's selector loop without tracking every async
generator for shutdown and without the debug checks per handle (issue #15) — the same behaviour otherwise."""

from __future__ import annotations

import asyncio
import contextvars
import gc

import pytest
import uvicorn

from modelyard.gateway.loop import ServeLoop
from modelyard.gateway.server import SERVE_LOOP


def test_serve_runs_on_it() -> None:
    assert uvicorn.Config(app=None, loop=SERVE_LOOP).get_loop_factory() is ServeLoop


def run(coro_fn, *, debug: bool = False):  # type: ignore[no-untyped-def]
    loop = ServeLoop()
    loop.set_debug(debug)
    try:
        return loop.run_until_complete(coro_fn(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_async_generators_are_not_tracked_but_one_left_open_is_still_finalised() -> None:
    closed: list[str] = []

    async def gen():  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    async def main(loop: asyncio.AbstractEventLoop) -> int:
        g = gen()
        await anext(g)
        tracked = len(loop._asyncgens)  # type: ignore[attr-defined]
        del g  # left suspended: asyncio's finalizer hook closes it on the loop
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
        return tracked

    assert run(main) == 0 and closed == ["closed"]


def test_in_debug_mode_it_tracks_them_as_asyncio_does() -> None:
    async def gen():  # type: ignore[no-untyped-def]
        yield 1

    async def main(loop: asyncio.AbstractEventLoop) -> int:
        g = gen()
        await anext(g)
        n = len(loop._asyncgens)  # type: ignore[attr-defined]
        await g.aclose()
        return n

    assert run(main, debug=True) == 1


def test_callbacks_run_in_order_in_their_context_and_a_closed_loop_refuses_them() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    seen: list[tuple[int, str]] = []

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        ctx = contextvars.copy_context()
        ctx.run(var.set, "inner")
        done = loop.create_future()
        loop.call_soon(lambda: seen.append((1, var.get())))
        loop.call_soon(lambda: seen.append((2, var.get())), context=ctx)
        handle = loop.call_soon(lambda: seen.append((3, var.get())))
        handle.cancel()
        loop.call_soon(done.set_result, None)
        await done
        assert abs(loop.time() - asyncio.get_running_loop().time()) < 1

    run(main)
    assert seen == [(1, "outer"), (2, "inner")]
    loop = ServeLoop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)


def test_a_handle_is_made_without_asking_for_debug_mode() -> None:
    asked = 0

    class Counting(ServeLoop):
        def get_debug(self) -> bool:
            nonlocal asked
            asked += 1
            return super().get_debug()

    loop = Counting()
    try:
        asked = 0
        handle = loop.call_soon(print)
        assert asked == 0  # asyncio's Handle.__init__ asks on every handle
        handle.cancel()
    finally:
        loop.close()


def pending_wakeups(loop: ServeLoop) -> int:
    """Bytes waiting in the loop's self-pipe (asyncio's socket pair)."""
    n = 0
    while True:
        try:
            n += len(loop._ssock.recv(4096))  # type: ignore[attr-defined]
        except BlockingIOError:
            return n


def test_a_thread_wakes_a_sleeping_loop_but_writes_nothing_to_a_busy_one() -> None:
    import threading

    async def main(loop: ServeLoop) -> tuple[int, float]:
        ran: list[int] = []
        loop.call_soon_threadsafe(ran.append, 1)  # from the loop's own thread: it is busy, no byte written
        busy = pending_wakeups(loop)
        await asyncio.sleep(0)
        assert ran == [1]
        woken = loop.create_future()
        t0 = loop.time()
        # the loop sleeps in its selector with no timer due: only the self-pipe can wake it
        threading.Timer(0.05, loop.call_soon_threadsafe, (woken.set_result, None)).start()
        await asyncio.wait_for(woken, 5)
        return busy, loop.time() - t0

    busy, waited = run(main)
    assert busy == 0
    assert waited < 2, "the thread's callback woke the loop"


def test_a_callback_queued_between_the_loops_look_and_its_sleep_is_not_slept_through() -> None:
    """The race of gateway/loop.py's ``_Selector``: a callback that lands after the loop chose to sleep with no
    timeout, but before it is asleep, makes that poll return at once."""
    loop = ServeLoop()
    try:
        ran: list[int] = []
        loop._ready.append(asyncio.Handle(ran.append, (1,), loop))  # as a thread would, with asleep still false
        t0 = loop.time()
        assert loop._selector.select(None) == []  # type: ignore[attr-defined]
        assert loop.time() - t0 < 1
    finally:
        loop.close()
