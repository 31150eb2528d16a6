"""Where per-model state reads the time.

Breakers compare deadlines with a clock. By default that is the running event loop's clock
(``loop.time()``, monotonic), the same one every timeout, sleep and queue bound uses — so a
loop with simulated time (replay, tests) moves breakers, slots and timeouts together, and
nothing has to sleep for real to let a cooldown expire.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import heapq
import itertools
import os
import selectors
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

Clock = Callable[[], float]
T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")


def loop_clock() -> float:
    """The running loop's time; outside a loop, the monotonic clock the default loop uses too."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class _Here(threading.local):
    """Per thread: the :class:`VirtualTimeLoop` running in it, if one is, and the loop running in it if that loop
    said so (:func:`loop_running`). Both are None on the class, so a thread that never ran one finds it there:
    ``getattr(threading.local(), "loop", None)`` raised and cleared a formatted AttributeError each time, ~4,000
    instructions, three times per request in ``serve`` (callgrind, issue #15)."""

    loop: VirtualTimeLoop | None = None
    running: asyncio.AbstractEventLoop | None = None


_here = _Here()
os.register_at_fork(after_in_child=lambda: _here.__dict__.clear())  # a child runs no loop of ours


@contextlib.contextmanager
def loop_running(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Wrap a loop's ``run_forever``: while it runs, :func:`running_loop` and :func:`current_loop` find it in this
    thread without asking asyncio — whose ``get_running_loop()`` makes a ``getpid`` system call each time (a check
    for a fork), five times per request in ``serve`` (strace, issue #15)."""
    previous = _here.running
    _here.running = loop
    try:
        yield
    finally:
        _here.running = previous


def wall_clock() -> float:
    """Seconds since the epoch, for timestamps in the log; under a :class:`VirtualTimeLoop`, its
    simulated time (which it keeps on the epoch scale), so a simulated run logs simulated times.

    Called for every request and attempt: it asks a thread-local, not ``asyncio.get_running_loop()``
    (which makes a ``getpid`` system call each time on Linux)."""
    loop = _here.loop
    return time.time() if loop is None else loop.now


def running_loop() -> asyncio.AbstractEventLoop:
    """``asyncio.get_running_loop()``; on a loop that says it runs (:func:`loop_running`: ``serve``'s, a
    :class:`VirtualTimeLoop`) without the ``getpid`` system call it makes each time (0.3 µs on this machine, asked
    several times per request)."""
    loop = _here.running
    return asyncio.get_running_loop() if loop is None else loop


def current_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop of this thread or None (``asyncio._get_running_loop()``), as :func:`running_loop` finds it."""
    loop = _here.running
    return asyncio._get_running_loop() if loop is None else loop


class ManualClock:
    """A clock that moves only when told to: breakers tested to the millisecond without sleeping."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


if TYPE_CHECKING:
    class _TimerHandle(asyncio.TimerHandle):
        """asyncio's TimerHandle with the private flag the loop keeps on it (not in typeshed)."""

        _scheduled: bool
        _when: float
        _callback: Callable[..., object]
        _args: tuple[Any, ...]
        _context: contextvars.Context
        _cancelled: bool
else:
    _TimerHandle = asyncio.TimerHandle


def fill_handle(handle: asyncio.Handle, callback: Callable[..., object], args: tuple[Any, ...],
                loop: asyncio.AbstractEventLoop, context: contextvars.Context | None) -> None:
    """What asyncio's Handle.__init__ sets, without its debug checks."""
    h: Any = handle
    h._context = contextvars.copy_context() if context is None else context
    h._loop = loop
    h._callback = callback
    h._args = args
    h._cancelled = False
    h._repr = None
    h._source_traceback = None


class FastHandle(asyncio.Handle):
    """asyncio's Handle, made without its debug checks (the loop falls back to asyncio's in debug mode);
    both loops modelyard runs make theirs so (this one, and serve's: gateway/loop.py).
    Made by :meth:`VirtualTimeLoop.call_soon` as ``object.__new__`` + :func:`fill_handle`: calling a class with
    a Python ``__init__`` costs a type call and a slot lookup on top of the ``__init__``."""

    __slots__ = ()


class _Timer(_TimerHandle):
    """asyncio's TimerHandle, made without its debug checks (by :meth:`VirtualTimeLoop.call_at`, as above)."""

    __slots__ = ()

    def cancel(self) -> None:
        """TimerHandle.cancel in one call (it makes three: itself, Handle.cancel, the loop's count)."""
        if not self._cancelled:
            self._cancelled = True
            if self._scheduled:
                self._loop._cancelled_timers += 1  # type: ignore[attr-defined]
            self._callback = _nothing
            self._args = ()


_new = object.__new__
_heappush, _heappop = heapq.heappush, heapq.heappop
_copy_context = contextvars.copy_context


def _nothing(*_: object) -> None:
    pass


_EMPTY = contextvars.Context()


class _Wake:
    """What :func:`sleep` awaits on a :class:`VirtualTimeLoop`: a future and its timer in one object.

    ``asyncio.sleep`` makes a Future, a TimerHandle for it, and — when the timer runs — a Handle to
    wake the task one loop iteration later. This object sits in the loop's timer heap itself and,
    when due, runs the waiting task's wake-up directly: one object and one iteration per sleep. It
    speaks the protocol asyncio uses for foreign futures (``_asyncio_future_blocking``, ``get_loop``,
    ``add_done_callback``, ``cancel``, ``result``, ``exception``; Task, ``gather`` and ``timeout`` take
    it), so cancellation (a watchdog, a timeout) behaves exactly as it does for ``asyncio.sleep``.
    """

    __slots__ = ("_args", "_asyncio_future_blocking", "_callback", "_cancel_message", "_cancelled", "_context",
                 "_loop", "_scheduled", "_when")
    # made by VirtualTimeLoop.wake_at, which sets every one of these (no __init__: see FastHandle)
    _loop: VirtualTimeLoop
    _when: float
    _scheduled: bool  # in the heap; False once due (done), unless cancelled first
    _cancelled: bool
    _cancel_message: object
    _callback: Callable[..., object]
    _context: contextvars.Context
    _args: tuple[Any, ...]
    _asyncio_future_blocking: bool

    def __await__(self) -> Any:
        if self._scheduled and not self._cancelled:
            self._asyncio_future_blocking = True
            yield self
        # woken: the wake-up has run, so let go of it and of the arguments naming this object (a
        # cycle that held the task, its coroutine and its context until the garbage collector ran)
        self._callback, self._args = _nothing, ()
        if self._cancelled or self._scheduled:
            self.result()  # raises as a future does

    def get_loop(self) -> VirtualTimeLoop:
        return self._loop

    def when(self) -> float:
        return self._when

    def done(self) -> bool:
        return self._cancelled or not self._scheduled

    def cancelled(self) -> bool:
        return self._cancelled

    def _make_cancelled_error(self) -> asyncio.CancelledError:
        return asyncio.CancelledError(*(() if self._cancel_message is None else (self._cancel_message,)))

    def result(self) -> None:
        if self._cancelled:
            raise self._make_cancelled_error()
        if self._scheduled:
            raise asyncio.InvalidStateError("not due yet")

    def exception(self) -> BaseException | None:
        self.result()
        return None

    def add_done_callback(self, fn: Callable[..., object], *, context: contextvars.Context | None = None) -> None:
        if self._cancelled or not self._scheduled:  # done(), inlined: a task asks once per sleep
            self._loop.call_soon(fn, self, context=context)
        elif self._callback is not _nothing:
            raise RuntimeError("a simulated sleep has one waiter")
        else:
            self._callback = fn
            self._context = contextvars.copy_context() if context is None else context

    def remove_done_callback(self, fn: Callable[..., object]) -> int:
        if self._callback is fn:
            self._callback = _nothing
            return 1
        return 0

    def cancel(self, msg: object = None) -> bool:
        if self.done():
            return False
        self._cancelled = True
        self._cancel_message = msg
        self._loop._timer_handle_cancelled(self)  # type: ignore[arg-type]
        if self._callback is not _nothing:
            self._loop.call_soon(self._callback, self, context=self._context)
        return True


def sleep(delay: float) -> Awaitable[None]:
    """``asyncio.sleep(delay)``, as cheap as a timer can be on a :class:`VirtualTimeLoop` (one object,
    one loop iteration), and ``asyncio.sleep`` itself on any other loop."""
    loop = _here.loop
    return asyncio.sleep(delay) if loop is None else loop.sleep(delay)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle time: a simulated hour of timeouts, sleeps, queue
    bounds and cooldowns runs in the milliseconds its callbacks take. The router runs on it
    unchanged — replay and tests use the real rules, not a model of them.

    Its timers live in a heap of ``(when, seq, handle)`` tuples, compared in C (the stock loop
    compares TimerHandles in Python, and a replay schedules millions of them); real I/O (another
    thread waking the loop) is polled every :attr:`POLL_EVERY` iterations, or waited for when
    nothing at all is scheduled. Outside debug mode, handles are made and run without asyncio's
    debug bookkeeping, and async generators are not tracked for :meth:`shutdown_asyncgens` (a
    replay starts millions; every one the router starts it also closes).
    """

    POLL_EVERY = 256  # ~50 simulated requests per look for real I/O (a select call, ~3 µs here)

    if TYPE_CHECKING:  # the asyncio.BaseEventLoop internals this loop drives; typeshed does not declare them
        _ready: collections.deque[Any]
        _stopping: bool
        _debug: bool
        _selector: selectors.BaseSelector

        _thread_id: int | None

        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...
        def _process_events(self, event_list: list[Any]) -> None: ...

    def __init__(self, start: float | None = None):
        """``start``: the simulated time to begin at, in epoch seconds (default: now)."""
        super().__init__()
        self.now = time.time() if start is None else start
        self._timers: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._iterations = 0
        # On the epoch scale a float step is ~0.2 µs: the default resolution (1 ns) would vanish in
        # rounding and a timer due "now" would never count as due. One microsecond is plenty.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return self.now

    def run_forever(self) -> None:
        previous = _here.loop
        _here.loop = self
        try:
            with loop_running(self):
                if self._debug:
                    super().run_forever()
                else:
                    self._run_lean()
        finally:
            _here.loop = previous

    def _run_lean(self) -> None:
        """BaseEventLoop.run_forever without its debug hooks: no coroutine origin tracking, and no hook
        on each async generator's first iteration (the router starts several per request); the
        finalizer hook stays, so a generator dropped unclosed is still closed on this loop."""
        self._check_closed()
        self._check_running()
        hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=None, finalizer=self._asyncgen_finalizer_hook)
            asyncio.events._set_running_loop(self)
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            asyncio.events._set_running_loop(None)
            sys.set_asyncgen_hooks(*hooks)

    def sleep(self, delay: float) -> Awaitable[None]:
        """:func:`sleep` on this loop, for a caller that already holds it."""
        if self._debug:
            return asyncio.sleep(delay)
        return self.wake_at(self.now + delay)

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        if self._closed:  # type: ignore[attr-defined]
            self._check_closed()
        h: Any = _new(FastHandle)
        # fill_handle, inlined: two or three handles per simulated request
        h._context = _copy_context() if context is None else context
        h._loop = self
        h._callback = callback
        h._args = args
        h._cancelled = False
        h._repr = None
        h._source_traceback = None
        self._ready.append(h)
        return h

    def call_at(self, when: float, callback: Callable[[*_Ts], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if self._closed:  # type: ignore[attr-defined]
            self._check_closed()
        timer: Any = _new(_Timer)
        timer._context = _copy_context() if context is None else context  # fill_handle, inlined
        timer._loop = self
        timer._callback = callback
        timer._args = args
        timer._cancelled = False
        timer._repr = None
        timer._source_traceback = None
        timer._when = when
        timer._scheduled = True
        _heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def wake_at(self, when: float) -> _Wake:
        """An awaitable done at loop time ``when`` (what :func:`sleep` returns here)."""
        if self._closed:  # type: ignore[attr-defined]
            self._check_closed()
        wake = _new(_Wake)
        wake._loop = self
        wake._when = when
        wake._scheduled = True
        wake._cancelled = False
        wake._cancel_message = None
        wake._callback = _nothing
        wake._context = _EMPTY
        wake._args = (wake,)
        wake._asyncio_future_blocking = False
        _heappush(self._timers, (when, next(self._seq), wake))
        return wake

    def _timer_handle_cancelled(self, handle: _TimerHandle) -> None:
        if handle._scheduled:
            self._cancelled_timers += 1

    def _run_once(self) -> None:
        """Up to :attr:`POLL_EVERY` iterations of asyncio's loop in one call (each: the timers now due
        join the ready callbacks, which all run; when none is ready, time jumps to the next timer),
        with one look for real I/O first — or a wait for it when nothing at all is scheduled."""
        timers, ready = self._timers, self._ready
        if not ready and not timers and not self._stopping:
            self._process_events(self._selector.select(None))  # only real I/O can wake the loop now
        else:
            self._process_events(self._selector.select(0))
        resolution = self._clock_resolution
        for _ in range(self.POLL_EVERY):
            if self._cancelled_timers > 512 and self._cancelled_timers * 2 > len(timers):
                kept = []
                for entry in timers:
                    if entry[2]._cancelled:
                        entry[2]._scheduled = False
                    else:
                        kept.append(entry)
                heapq.heapify(kept)
                self._timers = timers = kept
                self._cancelled_timers = 0
            while timers and timers[0][2]._cancelled:
                heapq.heappop(timers)[2]._scheduled = False
                self._cancelled_timers -= 1
            self._iterations += 1
            if not ready and not self._stopping:
                if not timers:
                    return  # the next call waits for real I/O
                when = timers[0][0]
                if when > self.now:
                    self.now = when  # nothing to do until the next timer: jump to it
                end = self.now + resolution  # the next timers in the heap are its root's children:
                if len(timers) == 1 or (timers[1][0] >= end and (len(timers) == 2 or timers[2][0] >= end)):
                    # the only callback of this iteration (most are: a replay's events seldom share a
                    # microsecond): run it without the round trip through the ready queue
                    due = _heappop(timers)[2]
                    due._scheduled = False
                    try:
                        due._context.run(due._callback, *due._args)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._failed(due, exc)
                    if self._stopping:
                        return
                    continue
            end = self.now + resolution
            while timers and timers[0][0] < end:
                handle = _heappop(timers)[2]
                handle._scheduled = False
                ready.append(handle)
            for _ in range(len(ready)):
                due = ready.popleft()
                if due._cancelled:
                    continue
                try:  # Handle._run, inlined (a replay runs tens of millions)
                    due._context.run(due._callback, *due._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._failed(due, exc)
            if self._stopping:
                return

    def _failed(self, due: Any, exc: BaseException) -> None:
        self.call_exception_handler({"message": f"Exception in callback {due._callback!r}", "exception": exc,
                                     "handle": due})

    def close(self) -> None:
        self._timers.clear()
        super().close()


def run_simulated(main: Coroutine[Any, Any, T], start: float | None = None) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
