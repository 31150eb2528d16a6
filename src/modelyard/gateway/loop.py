"""The event loop ``modelyard serve`` runs on: asyncio's selector loop, less five costs per request.

- **Async generators are not tracked** for :meth:`~asyncio.AbstractEventLoop.shutdown_asyncgens`.
  asyncio puts every async generator, on its first step, into a weak set (a weak reference with a
  callback, and a second Python call when it is freed) so that the loop's shutdown can close those
  still suspended; here no first-step hook is installed at all (debug mode: as asyncio, from the
  mode the loop runs in when it starts). A routed request starts nine (the SSE reader, the provider,
  the shape checks, the time bounds, the router's walk...) and the router closes every one it starts;
  one left unclosed is still finalised when it is freed (asyncio's finalizer hook, which stays in
  place). Issue #15.
- **Another thread wakes the loop only when it sleeps.** ``call_soon_threadsafe`` writes a byte to the
  loop's self-pipe every time, so that a loop asleep in its selector wakes up; a loop that is busy reads
  it back in its next iteration for nothing (two system calls and an event). The routing-log writer
  resolves its waiters that way after every commit: under load, with the loop always busy, those writes
  were wasted. The selector says whether the loop is asleep in it, and the byte is written only then
  (a callback queued just before the loop goes to sleep makes that sleep a poll: see :class:`_Selector`).
- **Handles are made without asyncio's debug checks** (``Handle.__init__`` asks ``get_debug()``
  each time), as the replay's virtual-time loop does (``router/clock.py``); the clock is
  ``time.monotonic`` itself rather than a method that calls it.
- **The running loop is found without a system call.** ``asyncio.get_running_loop()`` calls ``getpid``
  each time (to tell a forked child's loop from its parent's); the router, the routing-log writer and the
  request's own bookkeeping asked it five times per request. This loop says it runs in a thread-local
  (``router.clock.loop_running``), where ``router.clock.running_loop()`` finds it. Issue #15.
- **aiohttp's request body is written at once, not in a task of its own.** aiohttp's client sends each
  request's body from a task (``ClientRequest.write_bytes``); on Python 3.12+ it starts that task eagerly
  (``eager_start=True``: the body leaves in the same step and, written whole, no task is left), on 3.11
  the task waits for the loop's next iteration — every request to an HTTP provider left one loop
  iteration later, and a task and its two done callbacks cost another. This loop runs that coroutine's
  first step at once as 3.12 does; one that has to wait (a paused transport, ``100-continue``) goes on
  in a task from where it stopped. Issue #15.

In debug mode (``PYTHONASYNCIODEBUG=1``, ``loop.set_debug(True)``) it behaves exactly as asyncio's.
Not uvloop: see ``gateway/server.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVarTuple

from aiohttp.client_reqrep import ClientRequest

from modelyard.router.clock import FastHandle, fill_handle, loop_running

_Ts = TypeVarTuple("_Ts")
_new = object.__new__
#: coroutines whose first step runs when their task is made (what their library asks for on Python 3.12+)
_EAGER = frozenset({ClientRequest.write_bytes.__code__})


class _Selector(selectors.DefaultSelector):
    """The platform's selector, telling whether the loop is asleep in it (``asleep``).

    The loop looks at its ready callbacks before it picks the timeout of its poll; a thread that queues one
    after that look and before the poll saw ``asleep`` false, so it did not write to the self-pipe. Hence the
    second look here, after ``asleep`` is set: either it sees that callback (and the poll does not wait) or
    the thread saw ``asleep`` true (and wrote). Both run under the GIL, so one of the two orders holds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.asleep = False
        self.ready: Any = ()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.asleep = True
        try:
            return super().select(0 if self.ready else timeout)
        finally:
            self.asleep = False


class ServeLoop(asyncio.SelectorEventLoop):
    #: the loop's clock (asyncio's ``time()`` is a method around this very function)
    time = staticmethod(time.monotonic)

    def __init__(self) -> None:
        selector = _Selector()
        super().__init__(selector)
        selector.ready = self._ready
        self._asleep = selector

    if TYPE_CHECKING:  # the asyncio.BaseEventLoop internals used below; typeshed does not declare them
        _ready: Any
        _debug: bool
        _closed: bool

        def _check_closed(self) -> None: ...

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        if self._closed:
            self._check_closed()
        handle = _new(FastHandle)  # as the replay's loop makes them: no type call, no Python __init__
        fill_handle(handle, callback, args, self, context)
        self._ready.append(handle)
        return handle

    def run_forever(self) -> None:
        with loop_running(self):  # found by router.clock.running_loop() without a getpid system call
            super().run_forever()

    def create_task(self, coro: Any, *, name: str | None = None,  # type: ignore[override]
                    context: contextvars.Context | None = None) -> asyncio.Future[Any]:
        if getattr(coro, "cr_code", None) in _EAGER and not self._debug:
            return _started(self, coro, name, context)
        return super().create_task(coro, name=name, context=context)

    def _write_to_self(self) -> None:
        if self._asleep.asleep or self._debug:  # a busy loop sees the callback in its next iteration anyway
            super()._write_to_self()  # type: ignore[misc]

    @property
    def _asyncgen_firstiter_hook(self) -> Callable[[Any], None] | None:
        """What ``run_forever`` installs as the first-iteration hook of every async generator: nothing, outside debug
        mode — the interpreter then makes no call at all (a hook that returned at once was still a Python call per
        generator a request starts, issue #15). The finalizer hook stays, so one left open is still closed."""
        return super()._asyncgen_firstiter_hook if self._debug else None  # type: ignore[misc]


def _started(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], name: str | None,
             context: contextvars.Context | None) -> asyncio.Future[Any]:
    """``coro`` with its first step run now, in the context its task would have had (Python 3.12's
    ``eager_start``): done at once, a finished future; else a task that goes on from where it waits."""
    ctx = contextvars.copy_context() if context is None else context
    try:
        waiting = ctx.run(coro.send, None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # as a task that failed in its first step: the exception is its result
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    return asyncio.Task(_resumed(coro, waiting), loop=loop, name=name, context=ctx)


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """The rest of ``coro``, whose first step yielded ``waiting`` (the future it awaits): what ``yield from``
    does, from a coroutine already started. A task's cancellation is thrown in where it waits."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                waiting = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration as stop:
                return stop.value
