"""How many calls one process has at Redis at once, and how long a round trip to it takes.

**At most :data:`AT_ONCE` calls at once.** redis-py's pool opens a connection for every call made while the others
are busy and keeps it for good, so a burst of 40 requests opened 40 connections from one process (41 with the grant
listener), held idle ever after. A managed Redis counts them against a small ``maxclients`` — 20 on Heroku's
smallest plans, 30 on Redis Cloud's free one (cube-js/cube#104: "If I make 3+ concurrent queries … ERR max number of
clients reached"; PostHog/posthog#2493) — and a Redis shared with another application takes the room from it. At the
limit Redis answers each new connection "-ERR max number of clients reached" and closes it, often before redis-py reads
the reply ("Connection lost", "Connection closed by server"): the link went down and up again dozens of times in one
burst, each time moving every model to the outage share, with Redis answering on the connections already open. A call
takes well under a millisecond on a LAN (one round trip: the scripts run in microseconds), so a few connections carry
thousands of calls a second; the rest wait their turn here, off the store's bound — a call waits for a connection of
its own, not for Redis, and a request waits at most its queue bound.

**The round trip.** Every bound on a call is ``state.timeout``; a call is one round trip, the heartbeat two (redis-py
asks ``SCRIPT EXISTS`` before a pipeline of scripts); the first call on a new connection took five here (its set-up,
then a script's first use: ``NOSCRIPT``, ``SCRIPT LOAD``, the call again), six with TCP's handshake over a network and
more with TLS. Over a WAN or a VPN
(50–150 ms a round trip) the default 0.5 s left a new connection no room: both processes of a team went down 1.7 s
after they started, for 1.5 s, at 150 ms ± 20 — saying only "no answer within 0.5s — Redis hung or slow". Each
call's time is kept (:class:`RoundTrips`), and the grant listener's PING while its channel is quiet (a round trip
timed while the link is down), and a bound under :data:`TIMEOUT_PER_ROUND_TRIP` of them is said with the
figure and what to write.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import deque

#: calls one process has at Redis at once (the grant listener's connection and the occasional reads beside them)
AT_ONCE = 8

#: ``state.timeout`` should be at least this many round trips: the first call on a new connection costs five or six
#: (at 5, 1 s at 150 ms ± 30 still went down once: 6 × 180 ms)
TIMEOUT_PER_ROUND_TRIP = 8

#: how many of the latest calls' times the round trip is the median of
KEPT = 32

#: the median is looked at again after this many round trips
EVERY = 8

#: no finding before this many round trips (a call that opened a connection is not counted; one that loaded its
#: script — the first of each kind — is, at three round trips: a few of those leave the median where it was)
FEWEST = 8


class CallGate:
    """At most :data:`AT_ONCE` calls at once. ``async with gate:`` waits for a turn; :meth:`take` within a budget."""

    def __init__(self, at_once: int = AT_ONCE) -> None:
        self._free = asyncio.Semaphore(at_once)

    async def take(self, budget: float | None) -> None:
        """Wait for a turn; ``TimeoutError`` when ``budget`` runs out first (the caller's, not the store's). A free
        turn is taken at once, without a timer (the hot path: a call of a request)."""
        if budget is None or not self._free.locked():
            await self._free.acquire()
            return
        async with asyncio.timeout(max(budget, 0.0)):
            await self._free.acquire()

    def give(self) -> None:
        self._free.release()

    async def __aenter__(self) -> None:
        await self._free.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._free.release()


class RoundTrips:
    """The times of the latest calls that Redis answered, each one round trip."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=KEPT)
        self._added = 0

        #: connections opened so far (the link counts them): a call during which one opened is not one round trip
        self.opened = 0

    def add(self, seconds: float, opened_before: int) -> bool:
        """A call that took ``seconds``; ``opened_before``: :attr:`opened` when it was sent. Whether it is time to
        look at the median again (every :data:`EVERY` round trips: not at every call of the hot path)."""
        if self.opened != opened_before:
            return False
        self._times.append(seconds)
        self._added += 1
        return self._added % EVERY == 0

    def typical(self) -> float | None:
        """The median of the latest calls (None: too few yet)."""
        return statistics.median(self._times) if len(self._times) >= FEWEST else None

    def short_bound(self, timeout: float, lease: float, refresh: float) -> str:
        """What to write when ``timeout`` is under :data:`TIMEOUT_PER_ROUND_TRIP` round trips ('' : it is not)."""
        typical = self.typical()
        if typical is None or timeout >= TIMEOUT_PER_ROUND_TRIP * typical:
            return ""
        need = math.ceil(TIMEOUT_PER_ROUND_TRIP * typical * 10) / 10
        lease_need = max(lease, math.ceil(9 * (refresh + need) * 10) / 10)
        return (f"a call to Redis takes {typical * 1000:.0f} ms here (one round trip: the median of the latest "
                f"{len(self._times)}), and state.timeout {timeout:g}s is under {TIMEOUT_PER_ROUND_TRIP} of them: a new "
                "connection's first call takes five or six, so a slow moment counts as an outage — set "
                f"state.timeout: {need:g} and state.lease: {lease_need:g} (at least 9 × (refresh + timeout)) on every "
                "host")
