"""Spend caps: a billed model is skipped (reason ``spend_cap``) once it has cost its cap in the
current UTC day or month.

The routing log is the truth, so the cap holds across every process that logs to it — ``serve``,
``ask``, ``chat`` and Telegram on one machine (one SQLite file), every host with ``log.url`` — without
a store of its own: a reader given by the runtime sums each capped model's logged attempts since the
window began, at start and then every ``REFRESH`` seconds in a worker thread; between two readings,
what this process spent is added as it happens. The cost of a check on the request path is a dict
lookup and a comparison. What it can miss: other processes' spend of the last few seconds, and the
requests already running when the cap is reached (each finishes) — a cap is a bound to within one
refresh of traffic, not a hard wall.

With ``state: redis://…`` the processes also add what they spend to one counter per capped model and window in
Redis, and read the others' every tick (``router/shared/link.py``): gateways that log to their own files (no
``log.url``) each allowed the whole cap, and with ``log.url`` each saw the others' spend only at its next 10 s
reading. The counter and the log are both lower bounds of what was spent; a cap counts the larger, so a Redis that
restarted empty (its counters gone) falls back to the log.

With Redis, the window is named by Redis's clock (its ``TIME``, read by every tick's script): each host named it by its
own, so near midnight UTC a host minutes ahead counted into the next day's counter while the others counted into
today's — each saw only its own spend, and a host behind went on past a monthly cap into the next month's first minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from modelyard.config.schema import SpendCap, SpendWindow

log = logging.getLogger("modelyard.spend")

REFRESH = 10.0  # seconds between two readings of the log
#: (model → window start, epoch s) → model → USD logged since
Reader = Callable[[Mapping[str, float]], Mapping[str, float]]


def window_start(per: SpendWindow, now: float) -> float:
    """The epoch second the current UTC day or month began."""
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if per is SpendWindow.MONTH:
        start = start.replace(day=1)
    return start.timestamp()


class Unshared(NamedTuple):
    """What one tick sends to a capped model's shared counter."""

    #: the window's start (epoch s): names the counter
    start: float
    #: what the tick sends (USD): this process's whole spend in the window — sent whole every tick, so a tick that
    #: failed loses nothing — or, for a process that sends one request at a time, its spend since the last tick
    amount: float
    #: this process's whole spend in the window (USD)
    mine: float
    #: every process's share of the counter as this process last read it (instance → USD): a counter found below it
    #: lost its value (Redis restarted empty, an older snapshot) and is set back share by share
    floors: Mapping[str, float]


class SharedCount(NamedTuple):
    """A capped model's counter as Redis last said it."""

    #: the window it counts (epoch s)
    start: float
    #: every process's spend in it
    total: float
    #: instance → its spend in the window
    shares: Mapping[str, float]
    #: this process's own spend that the total holds
    mine: float


class SpendCaps:
    """The capped models' spend in their current window: logged (last reading) + this process's since."""

    def __init__(self, caps: Mapping[str, SpendCap], *, wall: Callable[[], float] = time.time,
                 refresh: float = REFRESH):
        self.caps = dict(caps)
        self.wall = wall
        self.refresh_every = refresh
        self.reader: Reader | None = None
        #: this host's file, read when :attr:`reader` (PostgreSQL: every host's spend) fails — a lower bound of the
        #: team's spend, so it only ever raises the count (see :meth:`read_now`)
        self.local_reader: Reader | None = None
        #: the last reading failed (said once per outage, not every refresh)
        self._unread = False
        #: the shared store's clock minus this host's (s): the windows are named by the store's clock once it has
        #: answered (:meth:`shared_seen`), by this host's until then or without a store
        self.offset = 0.0
        self._store_clock_unknown = True
        self._starts = {m: window_start(c.per, wall()) for m, c in self.caps.items()}
        self._logged = dict.fromkeys(self.caps, 0.0)
        self._own = dict.fromkeys(self.caps, 0.0)
        self._read_at = float("-inf")
        self._reading = False
        self._lock = threading.Lock()
        #: model → its counter as Redis last said it; and this process's whole spend in the window, sent every tick
        self._shared: dict[str, SharedCount] = {}
        self._mine = dict.fromkeys(self.caps, 0.0)
        #: what a process that sends one request at a time has added of it (see :meth:`take_unshared`)
        self._sent = dict.fromkeys(self.caps, 0.0)
        #: the log read is this host's file alone (no ``log.url``; the runtime sets it): what the file holds beyond what
        #: this host's processes sent to the shared counter was spent all the same (see :meth:`unsent_here`)
        self.reads_host_file = False

    def now(self) -> float:
        """The time the windows are named by: the shared store's clock when there is one, else this host's."""
        return self.wall() + self.offset

    def spent(self, model: str) -> float:
        logged = self._logged.get(model, 0.0) + self._own.get(model, 0.0)
        seen = self._shared.get(model)
        if seen is None or seen.start != self._starts.get(model):
            return logged
        return max(logged, seen.total + self._mine.get(model, 0.0) - seen.mine)

    @property
    def store_clock_unknown(self) -> bool:
        """No reply from the shared store yet: the windows are named by this host's clock."""
        return self._store_clock_unknown

    def take_unshared(self, *, once: bool = False, nothing: bool = False) -> dict[str, Unshared]:
        """model → what the shared state's link sends to the model's counter this tick: this process's whole spend
        in the window and the shares last read; the script keeps the larger of each share, so sending it again (a
        tick whose reply was lost) counts nothing twice, and reads every process's total back (:meth:`shared_seen`).
        ``once``: a process that sends one request at a time adds its spend since the last tick instead (see
        :mod:`modelyard.router.shared.spend`), never twice. ``nothing``: a call that only reads (Redis's clock)."""
        now = self.now()
        for m, cap in self.caps.items():  # the store's clock, just read, may name another window
            if window_start(cap.per, now) != self._starts[m]:
                self._roll(m, now)
        with self._lock:
            if nothing:
                return {m: Unshared(self._starts[m], 0.0, 0.0, {}) for m in self.caps}
            taken = {m: Unshared(self._starts[m], self._mine[m] - self._sent[m] if once else self._mine[m],
                                 self._mine[m], self._floors(m)) for m in self.caps}
            if once:
                self._sent = dict(self._mine)
            return taken

    def _floors(self, model: str) -> Mapping[str, float]:
        """Every process's share of the model's counter in its current window, as last read ({}: none yet)."""
        seen = self._shared.get(model)
        return seen.shares if seen is not None and seen.start == self._starts[model] else {}

    def unsent_here(self, model: str, host: str, me: str, *, skip: tuple[str, ...] = ()) -> float:
        """What this host's log file says was spent on ``model`` in its window beyond every share of this host's
        processes in the shared counter (instance ``host:…``) and the shares no host owns (``skip``: one-shot
        commands', older versions'): a process that spent and ended before its last tick reached Redis (``kill -9``,
        an ``ask`` whose closing tick failed) — every other host counted it short by that much, for the rest of the
        window. 0 when the log is not this host's file, or nothing was read yet. This process's own share is taken as
        what it spent (its field may lag by a tick); the others of this host are assumed gone (the caller asks only
        while this process is alone on its host: a live one's field lags its rows too)."""
        seen = self._shared.get(model)
        if not self.reads_host_file or seen is None or seen.start != self._starts.get(model):
            return 0.0
        with self._lock:
            in_file = self._logged[model] + self._own[model]
            mine = self._mine[model]
        here = sum(usd for who, usd in seen.shares.items() if who.startswith(f"{host}:") and who != me)
        elsewhere = sum(seen.shares.get(who, 0.0) for who in skip)
        return max(0.0, in_file - mine - here - elsewhere)

    def shared_seen(self, counts: Mapping[str, SharedCount], store_now: float | None = None) -> None:
        """model → its counter, as Redis just said; ``store_now``: Redis's clock as it said it (epoch s)."""
        with self._lock:
            self._shared.update(counts)
            if store_now is not None:
                self.offset = store_now - self.wall()
                self._store_clock_unknown = False

    def over(self, model: str) -> str | None:
        """Why ``model`` may not be used now (its cap is reached), or None. Never blocks."""
        cap = self.caps.get(model)
        if cap is None:
            return None
        now = self.wall()
        if now - self._read_at >= self.refresh_every:
            self._read_soon(now)
        if window_start(cap.per, self.now()) != self._starts[model]:
            self._roll(model, self.now())
        spent = self.spent(model)
        if spent < cap.usd:
            return None
        return f"spent ${spent:.4f} of its ${cap.usd:g} {cap.per} cap (UTC); it serves again next {cap.per}"

    def add(self, model: str, usd: float) -> None:
        """What this process just spent on ``model`` (a finished attempt's cost)."""
        if model in self._own and usd > 0:
            with self._lock:
                self._own[model] += usd
                self._mine[model] += usd

    def read_now(self, reader: Reader | None = None) -> None:
        """One reading of the log (blocking: start-up, tests, the worker thread); ``reader``: another
        than :attr:`reader` for this once (start-up reads this host's file, which never waits on a network).

        When it fails (PostgreSQL down) this host's file is read instead, but it counts only where it says more than
        the last reading plus this process's spend since: it holds this host's spend alone, and taken as the reading
        it dropped the other hosts' — a cap they had reached served again here for the whole outage."""
        reader = reader or self.reader
        if reader is None:
            return
        with self._lock:
            starts = dict(self._starts)
            own_before = dict(self._own)
        partial = False
        try:
            logged = reader(starts)
        except Exception as exc:  # the log is away (PostgreSQL down): keep the last reading and own counts
            if not self._unread:
                log.warning("could not read spend from the routing log (the last reading and this process's spend "
                            "since count until it is back): %s", exc)
            self._unread = True
            if self.local_reader is None or reader is self.local_reader:
                return
            try:
                logged, partial = self.local_reader(starts), True
            except Exception:  # this host's file too: nothing to add
                return
        else:
            if self._unread:
                log.info("spend caps: the routing log is read again")
            self._unread = False
        with self._lock:
            for model in self.caps:
                if self._starts[model] != starts[model]:
                    continue  # the window rolled over during the reading
                value = float(logged.get(model, 0.0))
                if partial and value <= self._logged[model] + own_before[model]:
                    continue  # this host's file alone says no more than what is counted already
                self._logged[model] = value
                # what was spent before the reading is in it (committed before its answer was reported)
                self._own[model] = max(0.0, self._own[model] - own_before[model])

    def _read_soon(self, now: float) -> None:
        self._read_at = now
        if self.reader is None or self._reading:
            return
        self._reading = True

        def work() -> None:
            try:
                self.read_now()
            finally:
                self._reading = False

        threading.Thread(target=work, name="modelyard-spend", daemon=True).start()

    def _roll(self, model: str, now: float) -> None:
        """A new window — or back to the one before: the store's clock, first read, says this host's (ahead) named the
        next too soon. What this process spent then was spent in the store's window: kept; the log is read again."""
        with self._lock:
            start = window_start(self.caps[model].per, now)
            back = start < self._starts[model]
            self._starts[model] = start
            self._logged[model] = 0.0
            if not back:
                self._own[model] = self._mine[model] = self._sent[model] = 0.0
        if back:  # the window's spend so far is in the log: read it now, not at the next refresh
            self._read_at = float("-inf")


def spend_caps(caps: Mapping[str, SpendCap | None]) -> SpendCaps | None:
    """The gate for a config's capped models, or None when no model has a cap (the common case)."""
    capped = {m: c for m, c in caps.items() if c is not None}
    return SpendCaps(capped) if capped else None
