"""The lease keeper: renews this process's slot leases from a thread while its event loop is stalled.

A slot's lease in Redis is renewed by the process's heartbeat, a task on its event loop, every ``lease/3``, and runs
out ``2·lease/3`` after the last renewal. A loop blocked for longer — synchronous work on it (a model loaded, a large
JSON parsed, a SQLite call), a long GC pause, swap — let the lease run out while the request that held the slot still
ran at the backend: another process took the slot and the model had ``max_concurrent + 1`` requests (Kleppmann, "How
to do distributed locking": a lock holder paused past its lease; the usual fix, a fencing token, needs the resource to
check it, and a model's server checks nothing). The lease measures whether the *process* lives, so this thread —
which a blocked loop does not block (``time.sleep``, I/O and C code release the GIL; pure Python hands it over every
5 ms) — renews what the loop holds once the loop's own renewal is late (:data:`modelyard.router.shared.lua.KEEP`:
it extends only entries still registered, so it never brings back a slot given back or lost with Redis's data).

What it cannot cover: a process stopped as a whole (``SIGSTOP``, a VM paused, a laptop asleep) stops this thread
too, and nothing inside it can keep its slot; its holder runs out as a dead process's does, and the slot is handed
out again. When it runs again its heartbeat registers the slot back (its request may still run), so the model is
over its limit only until one of those requests ends — said in the log by :meth:`RedisState.renewed`.

A loop blocked for ever (a deadlock) would keep its slots for ever this way: the keeper stops after
:data:`KEEP_AT_MOST_S` of one stall, and the slots then run out as a dead process's.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import redis

from modelyard.router.shared import lua, wire
from modelyard.router.shared.scripts import Script

if TYPE_CHECKING:
    from modelyard.router.shared.link import RedisLink

log = logging.getLogger("modelyard.state")

KEEP = Script.of(lua.KEEP)

#: the longest one stall of the loop is covered; after that the process counts as hung and its slots run out
KEEP_AT_MOST_S = 60.0


def late_after(heartbeat: float, tick: float, timeout: float) -> float:
    """How old the loop's last renewal may be before the keeper takes the loop for stalled: a loop on schedule renews
    up to a ``tick`` after its heartbeat is due (it looks once a tick), by a call of up to ``timeout`` — ``late`` was
    ``1.1 × heartbeat``, under that: a loop busy in 30 ms slices (a loaded gateway; no single block longer) was said to
    have "stalled 4.2s" and renewed from here. Never so late that the keeper's own renewal (a wake, ``every``, and a
    call, ``timeout``, and a ``timeout`` to spare) would come after the lease ran out (``2 × heartbeat``); with the
    defaults there is room for both (4.33 s, renewed by 5.25 s of 6.67 s)."""
    on_schedule = heartbeat + tick + timeout
    last_safe = 2 * heartbeat - heartbeat / 8 - 2 * timeout
    return max(heartbeat * 1.1, min(on_schedule, last_safe))


class LeaseKeeper:
    """One daemon thread per link, started with its background tasks, stopped by :meth:`stop` (or when the link is
    closing, or its loop stopped: a process that died in a test keeps no slot)."""

    def __init__(self, link: RedisLink):
        self.link = link
        #: wake this often; renew once the loop's last renewal is older than ``late``
        self.every = link.heartbeat / 8
        self.late = late_after(link.heartbeat, link.tick, link.settings.timeout)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-lease-keeper", daemon=True)
        self._client: redis.Redis | None = None
        #: when this thread last renewed (monotonic)
        self._kept_at = 0.0
        #: how many of the loop's slots its last renewal found still registered, and kept: none after a stop as a
        #: whole (SIGSTOP, a laptop asleep) — they ran out, and the log said the keeper kept them
        self.holders_kept = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        stall_from: float | None = None  # when the loop last renewed, while it is late
        kept = False
        try:
            while not self._stop.wait(self.every):
                link = self.link
                if not link.running():
                    return
                now = time.monotonic()
                if not link.up or now - link.renewed_at < self.late:
                    if stall_from is not None and kept:
                        log.warning("shared state %s: the event loop stalled %.1fs: its lease keeper kept this "
                                    "process's slots (they run out %.1fs after the last renewal)",
                                    link.settings.shown_url, now - stall_from, link.window_ms / 1000)
                    stall_from, kept = None, False
                    continue
                if stall_from is None:
                    stall_from = link.renewed_at
                if now - stall_from > KEEP_AT_MOST_S or now - max(link.renewed_at, self._kept_at) < self.late:
                    continue  # hung, not stalled (its slots run out as a dead process's); or renewed here lately
                if self.keep() and self.holders_kept:
                    kept = True  # said once the loop renews again: only when a slot was there to keep
        finally:
            if self._client is not None:
                self._client.close()

    def keep(self) -> bool:
        """Renew what the loop holds, once (from this thread, or a test's); whether anything was there to renew."""
        link = self.link
        calls = link.keep_calls()
        self._kept_at = time.monotonic()
        if not calls:
            return False
        sent = time.monotonic()
        try:
            if self._client is None:
                timeout = link.settings.timeout
                self._client = redis.Redis.from_url(link.settings.url, protocol=wire.PROTOCOL, socket_timeout=timeout,
                                                    socket_connect_timeout=timeout)
            try:
                kept = self._renew(self._client, calls)
            except redis.exceptions.NoScriptError:  # Redis restarted, or SCRIPT FLUSH: nothing ran; loaded, again
                self._client.script_load(KEEP.text)
                kept = self._renew(self._client, calls)
            self.holders_kept = kept
        except (redis.RedisError, OSError) as exc:  # the loop finds out for itself once it runs
            log.debug("shared state: the lease keeper could not renew: %s", exc)
            self._kept_at = 0.0  # try again at the next wake
            return False
        self._kept_at = sent
        return True

    @staticmethod
    def _renew(client: redis.Redis, calls: list[tuple[list[str], list[Any]]]) -> int:
        """One pipeline of EVALSHA, one round trip: a pipeline of redis-py's Script objects asked SCRIPT EXISTS first,
        a second round trip on a stalled process's last chance to keep its slots (see :mod:`.scripts`)."""
        with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(KEEP.sha, len(keys), *keys, *args)
            return sum(int(n) for n in pipe.execute())
