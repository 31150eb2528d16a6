"""The time bound of one call to the shared store, counted while this process runs.

``asyncio.timeout`` measures on the loop's monotonic clock, which goes on while the process is stopped (SIGSTOP,
``docker pause``, a VM paused, a debugger) and while its loop is blocked. A call in flight across such a stop timed
out the moment the process ran again — its reply already waiting in the socket: the loop reads a ready socket and
runs an expired timer in the same pass, and the timer's cancel came first. The link was then marked down ("no answer
within 1s — Redis hung or slow") with Redis answering, and a request waiting for a slot failed with the outage's
refusal (seen in CI: a waiter stopped and continued, its heartbeat's call in flight).

:func:`within` keeps ``asyncio.timeout``'s contract (``TimeoutError`` on expiry, the task cancelled, nested bounds
and outside cancels untouched) with two differences, both about the process not running rather than the store not
answering:

- a deadline whose timer runs late by more than a quarter of the bound (the loop was not running when it fell due)
  starts the bound again from now, at most :data:`RESTARTS` times: the store gets the whole bound while this process
  can read its reply;
- on time, the cancel is sent one pass of the loop later, so a reply read in the same pass as the timer's is taken.

A store that does not answer still costs the bound (plus one pass), as before.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

RESTARTS = 3
"""How many times one call's bound starts again after the process did not run when it fell due (stopped again and
again: each stop gives the store its bound once more, up to this)."""

LATE_SHARE = 0.25
"""A timer this late, as a share of the bound, means the loop was not running when the deadline fell due."""


class within:
    """``async with within(seconds):`` — ``asyncio.timeout(seconds)`` that does not count a stop of the process."""

    __slots__ = ("_deadline", "_handle", "_loop", "_restarts", "_seconds", "_timeout")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timeout = asyncio.timeout(None)
        self._restarts = 0

    async def __aenter__(self) -> within:
        await self._timeout.__aenter__()
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + self._seconds
        self._handle = self._loop.call_at(self._deadline, self._due)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._handle.cancel()
        await self._timeout.__aexit__(kind, exc, tb)  # raises TimeoutError for the cancel it sent

    def expired(self) -> bool:
        return self._timeout.expired()

    def _due(self) -> None:
        now = self._loop.time()
        if now - self._deadline > LATE_SHARE * self._seconds and self._restarts < RESTARTS:
            self._restarts += 1
            self._deadline = now + self._seconds
            self._handle = self._loop.call_at(self._deadline, self._due)
            return
        self._timeout.reschedule(now)  # at or before now: its cancel is sent with call_soon, a pass later
