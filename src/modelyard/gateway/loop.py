"""The event loop ``modelyard serve`` runs on: asyncio's selector loop, less two costs per request.

- **Async generators are not tracked** for :meth:`~asyncio.AbstractEventLoop.shutdown_asyncgens`.
  asyncio puts every async generator, on its first step, into a weak set (a weak reference with a
  callback, and a second Python call when it is freed) so that the loop's shutdown can close those
  still suspended. A routed request starts nine (the SSE reader, the provider, the shape checks, the
  time bounds, the router's walk...) and the router closes every one it starts; one left unclosed
  is still finalised when it is freed (asyncio's finalizer hook, which stays in place). Issue #15.
- **Handles are made without asyncio's debug checks** (``Handle.__init__`` asks ``get_debug()``
  each time), as the replay's virtual-time loop does (``router/clock.py``); the clock is
  ``time.monotonic`` itself rather than a method that calls it.

In debug mode (``PYTHONASYNCIODEBUG=1``, ``loop.set_debug(True)``) it behaves exactly as asyncio's.
Not uvloop: see ``gateway/server.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple

from modelyard.router.clock import FastHandle, fill_handle

_Ts = TypeVarTuple("_Ts")
_new = object.__new__


class ServeLoop(asyncio.SelectorEventLoop):
    #: the loop's clock (asyncio's ``time()`` is a method around this very function)
    time = staticmethod(time.monotonic)

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

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._debug:
            super()._asyncgen_firstiter_hook(agen)  # type: ignore[misc]
