"""The event loop ``modelyard serve`` runs on: asyncio's selector loop, less three costs per request.

- **Async generators are not tracked** for :meth:`~asyncio.AbstractEventLoop.shutdown_asyncgens`.
  asyncio puts every async generator, on its first step, into a weak set (a weak reference with a
  callback, and a second Python call when it is freed) so that the loop's shutdown can close those
  still suspended. A routed request starts nine (the SSE reader, the provider, the shape checks, the
  time bounds, the router's walk...) and the router closes every one it starts; one left unclosed
  is still finalised when it is freed (asyncio's finalizer hook, which stays in place). Issue #15.
- **Another thread wakes the loop only when it sleeps.** ``call_soon_threadsafe`` writes a byte to the
  loop's self-pipe every time, so that a loop asleep in its selector wakes up; a loop that is busy reads
  it back in its next iteration for nothing (two system calls and an event). The routing-log writer
  resolves its waiters that way after every commit: under load, with the loop always busy, those writes
  were wasted. The selector says whether the loop is asleep in it, and the byte is written only then
  (a callback queued just before the loop goes to sleep makes that sleep a poll: see :class:`_Selector`).
- **Handles are made without asyncio's debug checks** (``Handle.__init__`` asks ``get_debug()``
  each time), as the replay's virtual-time loop does (``router/clock.py``); the clock is
  ``time.monotonic`` itself rather than a method that calls it.

In debug mode (``PYTHONASYNCIODEBUG=1``, ``loop.set_debug(True)``) it behaves exactly as asyncio's.
Not uvloop: see ``gateway/server.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple

from modelyard.router.clock import FastHandle, fill_handle

_Ts = TypeVarTuple("_Ts")
_new = object.__new__


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

    def _write_to_self(self) -> None:
        if self._asleep.asleep or self._debug:  # a busy loop sees the callback in its next iteration anyway
            super()._write_to_self()  # type: ignore[misc]

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._debug:
            super()._asyncgen_firstiter_hook(agen)  # type: ignore[misc]
