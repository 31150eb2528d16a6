"""Shutting down with answers in flight: end each one with a final error, never a bare cut.

When ``serve`` gets SIGTERM or Ctrl-C, uvicorn stops accepting connections and then waits
(``timeout_graceful_shutdown``) for the open ones before cancelling them, which used to end a
long stream mid-sentence with no error event and print a traceback per cancelled task.
Instead the server tells the :class:`Drain` at once; it cancels every request it tracks *as
the gateway's own decision*, and each request turns that into a proper ending: a stream gets
an OpenAI-shaped error event (``code: shutting_down``), a buffered request a 503 with
``Retry-After``. The upstream call is cancelled the usual way (an in-process model stops
within a token; the request is logged ``cancelled`` with the tokens it produced), so the
server's wait ends within moments and nothing is left for it to cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from modelyard.router.clock import running_loop

SHUTTING_DOWN = "the gateway is shutting down; the answer was stopped"


class Drain:
    """The requests in flight, and whether the server is shutting down."""

    def __init__(self) -> None:
        self.closing = False
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Mark the current task as answering a request until the block ends."""
        task = self.enter()
        try:
            yield
        finally:
            self.leave(task)

    def enter(self) -> asyncio.Task:
        """:meth:`track` without a context manager (the hot path's ``try``/``finally``): call :meth:`leave`."""
        loop = running_loop()  # asyncio.current_task() asks get_running_loop(): a getpid system call (issue #15)
        task = asyncio.current_task(loop)
        assert task is not None
        self._loop = loop
        self._tasks.add(task)
        return task

    def leave(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)

    def alone(self) -> bool:
        """True when at most one request is in flight (the caller's own): nobody else waits on the loop."""
        return len(self._tasks) <= 1

    def stopped(self) -> bool:
        """Call in an ``except CancelledError``: True if the cancel was this drain's (then it is taken
        back, so the handler may still send its final event), False if it came from elsewhere."""
        if not self.closing:
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    def start(self) -> None:
        """Begin shutting down: every tracked request is cancelled. Safe to call from a signal handler."""
        if self._loop is None or self._loop.is_closed():
            self.closing = True
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._cancel_all)

    def _cancel_all(self) -> None:
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
