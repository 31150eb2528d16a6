"""``modelyard serve``'s event loop (gateway/loop.py): asyncio's selector loop without tracking every async
generator for shutdown and without the debug checks per handle (issue #15) — the same behaviour otherwise."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading

import pytest
import uvicorn

from modelyard.gateway.disconnect import HANGUP, Hangup, until_disconnect
from modelyard.gateway.drain import Drain
from modelyard.gateway.loop import ServeLoop
from modelyard.gateway.server import SERVE_LOOP
from modelyard.ledger.writer import LogWriter
from modelyard.router.clock import current_loop, running_loop
from modelyard.router.records import RequestRecord, new_request_id


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


def test_no_first_step_hook_is_called_at_all_outside_debug_mode() -> None:
    """A hook that returns at once is still a Python call per async generator (issue #15): none is
    installed; in debug mode asyncio's is; and the loop's end puts back the hooks it found."""
    import sys

    async def main(loop: asyncio.AbstractEventLoop) -> object:
        return sys.get_asyncgen_hooks().firstiter

    before = sys.get_asyncgen_hooks()
    assert run(main) is None
    hook = run(main, debug=True)
    assert hook is not None and getattr(hook, "__func__", None) is asyncio.BaseEventLoop._asyncgen_firstiter_hook
    assert sys.get_asyncgen_hooks() == before


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


# -- aiohttp's request body, written in the step that sends the request (Python 3.12's eager_start) ---------------


async def _echo_lengths(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive HTTP/1.1 server that answers each request with the length of the body it read."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
            answer = str(len(body)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def _posting(body_sizes: list[int]):  # type: ignore[no-untyped-def]
    """A main() for run(): POST bodies of these sizes over one aiohttp session; (answers, tasks the loop made)."""
    import aiohttp

    async def main(loop: asyncio.AbstractEventLoop) -> tuple[list[str], list[str]]:
        made: list[str] = []

        def factory(loop: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
            made.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        server = await asyncio.start_server(_echo_lengths, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        answers = []
        try:
            async with aiohttp.ClientSession() as session:
                loop.set_task_factory(factory)
                for size in body_sizes:
                    async with session.post(f"http://127.0.0.1:{port}/", data=b"x" * size) as r:
                        answers.append(await r.text())
                loop.set_task_factory(None)
        finally:
            server.close()
            await server.wait_closed()
        return answers, made

    return main


def test_an_aiohttp_request_body_is_written_without_a_task_of_its_own() -> None:
    """On 3.11 aiohttp writes every request body from a task started at the loop's next iteration (an iteration
    and a task per request to an HTTP provider, issue #15); serve's loop runs its first step at once, as aiohttp
    asks Python 3.12+ to, and a body written whole leaves no task behind."""
    answers, made = run(_posting([100, 2000]))
    assert answers == ["100", "2000"]
    assert not [name for name in made if "write_bytes" in name]
    answers, made = run(_posting([100]), debug=True)  # debug mode: asyncio's own way
    assert answers == ["100"] and [name for name in made if "write_bytes" in name]


# aiohttp/payload.py (BytesPayload) warns of any raw-bytes body over 1 MiB, as a ResourceWarning though nothing
# leaks: this test sends 32 MiB as bytes on purpose (the write that has to wait for drain() is what it tests)
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
def test_a_body_that_has_to_wait_for_the_transport_goes_on_in_a_task_from_where_it_stopped() -> None:
    big = 32 * 2**20  # far past the transport's high-water mark: the first step waits for drain()
    answers, _ = run(_posting([big, 10, big]))
    assert answers == [str(big), "10", str(big)]


def test_a_started_coroutine_keeps_its_context_result_exception_and_cancellation() -> None:
    from modelyard.gateway.loop import _started

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")

    async def at_once() -> str:
        var.set("inner")  # in the task's own context, not its creator's
        return var.get()

    async def failing() -> None:
        raise ValueError("no")

    async def waiting(fut: asyncio.Future[str], log: list[str]) -> str:
        var.set("waiter")
        try:
            return await fut + var.get()
        except asyncio.CancelledError:
            log.append("cancelled where it waited")
            raise

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        done = _started(loop, at_once(), None, None)
        assert done.done() and done.result() == "inner" and var.get() == "outer"
        failed = _started(loop, failing(), None, None)
        assert failed.done() and isinstance(failed.exception(), ValueError)
        log: list[str] = []
        fut: asyncio.Future[str] = loop.create_future()
        task = _started(loop, waiting(fut, log), "named", None)
        assert isinstance(task, asyncio.Task) and not task.done() and task.get_name() == "named"
        loop.call_later(0.01, fut.set_result, "answer from ")
        assert await task == "answer from waiter" and var.get() == "outer"
        fut2: asyncio.Future[str] = loop.create_future()
        task = _started(loop, waiting(fut2, log), None, None)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log == ["cancelled where it waited"] and fut2.cancelled()

    run(main)


# -- the running loop, found without asyncio's getpid system call (issue #15) -----------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count every ask of asyncio for the running loop: each is a ``getpid`` system call (CPython 3.11's check for a
    forked child), and ``asyncio.current_task()`` without a loop asks it too."""
    asked: list[str] = []
    for module in (asyncio, asyncio.events):
        for name in ("get_running_loop", "_get_running_loop"):
            real = getattr(asyncio.events, name)

            def ask(real=real, name=name):  # type: ignore[no-untyped-def]
                asked.append(name)
                return real()

            monkeypatch.setattr(module, name, ask)
    return asked


def test_a_request_s_bookkeeping_finds_serve_s_loop_without_asking_asyncio(tmp_path, monkeypatch) -> None:
    """The router's, the drain's, the disconnect watch's and the routing-log writer's look for the running loop —
    five ``getpid`` system calls per request in ``serve`` (strace: 7.1 per request, 2.0 after; the other two are
    aiohttp's ``create_task`` and, until round 14, the provider's session check) — find ``serve``'s loop in a
    thread-local."""

    writer = LogWriter(tmp_path / "log.sqlite3")
    asked = _counting(monkeypatch)

    async def answer() -> str:
        return "answered"

    async def receive() -> dict[str, str]:
        raise AssertionError("with a Hangup in the scope nothing reads receive")

    async def main(loop: asyncio.AbstractEventLoop) -> tuple[object, ...]:
        asked.clear()
        found = running_loop()
        drain = Drain()
        task = drain.enter()
        try:
            answered = await until_disconnect(receive, answer(), {HANGUP: Hangup()})  # type: ignore[arg-type]
            writer.submit(RequestRecord(new_request_id(), "bench"))
            committed = await writer.wait_written(block=0.002)
        finally:
            drain.leave(task)
        return found is loop, task is asyncio.tasks._current_tasks.get(loop), answered, committed, list(asked)

    try:
        assert run(main) == (True, True, "answered", True, [])
    finally:
        writer.close()


def test_the_loop_found_is_the_running_one_and_none_once_it_stops(monkeypatch) -> None:
    """Outside ``serve``'s loop the helpers are asyncio's own; once the loop stops it is not found any more (the
    thread-local is put back), and a thread of its own never sees another thread's loop."""
    import threading


    async def inside(loop: asyncio.AbstractEventLoop) -> tuple[bool, bool]:
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(current_loop()))
        thread.start()
        thread.join()
        return running_loop() is loop and current_loop() is loop, seen == [None]

    assert run(inside) == (True, True)
    assert current_loop() is None
    with pytest.raises(RuntimeError):
        running_loop()

    async def plain() -> bool:
        return running_loop() is asyncio.get_running_loop() and current_loop() is asyncio.get_running_loop()

    assert asyncio.run(plain())
