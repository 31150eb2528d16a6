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
    #: this process's spend since the last tick (USD)
    amount: float
    #: the highest total this process read for the window: the counter is set back to it if found below
    floor: float


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
        self._starts = {m: window_start(c.per, wall()) for m, c in self.caps.items()}
        self._logged = dict.fromkeys(self.caps, 0.0)
        self._own = dict.fromkeys(self.caps, 0.0)
        self._read_at = float("-inf")
        self._reading = False
        self._lock = threading.Lock()
        #: model → (window start, every process's spend in it) as Redis last said; and this process's spend not
        #: yet added there (the shared state's link drains it each tick)
        self._shared: dict[str, tuple[float, float]] = {}
        self._unshared = dict.fromkeys(self.caps, 0.0)

    def spent(self, model: str) -> float:
        logged = self._logged.get(model, 0.0) + self._own.get(model, 0.0)
        start, shared = self._shared.get(model, (None, 0.0))
        if start != self._starts.get(model):
            return logged
        return max(logged, shared + self._unshared.get(model, 0.0))

    def take_unshared(self) -> dict[str, Unshared]:
        """model → this process's spend not yet added to the shared counter, emptied: the shared state's link adds
        it to Redis and reads every process's total back (:meth:`shared_seen`)."""
        with self._lock:
            taken = {m: Unshared(self._starts[m], self._unshared[m], self._floor(m)) for m in self.caps}
            self._unshared = dict.fromkeys(self.caps, 0.0)
        return taken

    def _floor(self, model: str) -> float:
        """The highest shared total read for the model's current window (0: none yet)."""
        start, total = self._shared.get(model, (None, 0.0))
        return total if start == self._starts[model] else 0.0

    def shared_seen(self, totals: Mapping[str, tuple[float, float]]) -> None:
        """model → (window start, every process's spend in it), as Redis just said."""
        with self._lock:
            self._shared.update(totals)

    def over(self, model: str) -> str | None:
        """Why ``model`` may not be used now (its cap is reached), or None. Never blocks."""
        cap = self.caps.get(model)
        if cap is None:
            return None
        now = self.wall()
        if now - self._read_at >= self.refresh_every:
            self._read_soon(now)
        if window_start(cap.per, now) != self._starts[model]:
            self._roll(model, now)
        spent = self.spent(model)
        if spent < cap.usd:
            return None
        return f"spent ${spent:.4f} of its ${cap.usd:g} {cap.per} cap (UTC); it serves again next {cap.per}"

    def add(self, model: str, usd: float) -> None:
        """What this process just spent on ``model`` (a finished attempt's cost)."""
        if model in self._own and usd > 0:
            with self._lock:
                self._own[model] += usd
                self._unshared[model] += usd

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
        with self._lock:
            self._starts[model] = window_start(self.caps[model].per, now)
            self._logged[model] = self._own[model] = self._unshared[model] = 0.0


def spend_caps(caps: Mapping[str, SpendCap | None]) -> SpendCaps | None:
    """The gate for a config's capped models, or None when no model has a cap (the common case)."""
    capped = {m: c for m, c in caps.items() if c is not None}
    return SpendCaps(capped) if capped else None
