"""The timings a process's ``state:`` settings give it, and the safe ones when processes sharing a prefix disagree.

Each process registers its settings beside its limits (``@state``). The rules that keep the limit while a process is
cut off from Redis alone (see :meth:`~modelyard.config.schema.StateConfig.shortest_lease`) tie one process's timings to
the *others'*: its slots must outlive the moment the others hold its outage share back (their tick and timeout), it
may take its whole share only once they surely have, and the grace after Redis lost its data must let every live
process register again (their heartbeat). Each process checked them against its own settings only, so a host with a
short lease beside one with a slow refresh ran over the limit while cut off. Where they disagree each process takes the
safe side of both — its slots kept longer, its share taken later, a longer grace — and the difference is said.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelyard.config.schema import OnOutage, StateConfig

#: the key of a process's settings in its registered limits (an older version registers none)
STATE_KEY = "@state"


@dataclass(frozen=True, slots=True)
class Timings:
    """One process's settings, in seconds."""

    lease: float
    refresh: float
    timeout: float
    on_outage: OnOutage

    @classmethod
    def of(cls, settings: StateConfig) -> Timings:
        return cls(settings.lease, settings.refresh, settings.timeout, settings.on_outage)

    @classmethod
    def read(cls, raw: object) -> Timings | None:
        """From a registered ``@state`` entry; None when absent or not understood (an older version)."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(float(raw["lease"]), float(raw["refresh"]), float(raw["timeout"]), OnOutage(raw["on_outage"]))
        except (KeyError, TypeError, ValueError):
            return None

    def said(self) -> dict[str, Any]:
        return {"lease": self.lease, "refresh": self.refresh, "timeout": self.timeout,
                "on_outage": self.on_outage.value}

    def text(self) -> str:
        return (f"lease {self.lease:g}s, refresh {self.refresh:g}s, timeout {self.timeout:g}s, "
                f"on_outage {self.on_outage.value}")

    @property
    def heartbeat(self) -> float:
        return self.lease / 3

    @property
    def tick(self) -> float:
        return min(self.refresh, self.heartbeat)

    @property
    def window(self) -> float:
        """How long a holder's entry lives after its renewal."""
        return self.lease * 2 / 3

    @property
    def grace(self) -> float:
        """How long no slot is handed out after Redis lost its data: this process registers again within it."""
        return 2 * self.heartbeat + self.timeout

    @property
    def holds_back_after(self) -> float:
        """How long after another process's last registration this one surely holds its outage share back: it counts
        it silent after two ticks and two timeouts, at its next tick, by a call."""
        return 3 * (self.tick + self.timeout)


@dataclass(frozen=True, slots=True)
class Safe:
    """What this process uses, given the others' settings (its own where none is stricter)."""

    window_ms: float
    grace_ms: float
    #: seconds after this process's last registration until every other process holds its share back
    held_back_after: float
    #: another live process may use an outage share (``share``, or an older version that does not say)
    others_may_share: bool


def safe(mine: Timings, others: Iterable[Timings | None]) -> Safe:
    """The safe side of this process's timings and the others' (None: a process that registers none). With nobody
    else's known, this process's own — also below the lease rule, where a test builds it so on purpose."""
    told = list(others)
    known = [t for t in told if t is not None]
    theirs = max((t.holds_back_after for t in known), default=0.0)
    return Safe(window_ms=max(mine.window, mine.heartbeat + theirs if known else 0.0) * 1000,
                grace_ms=max([mine.grace, *(t.grace for t in known)]) * 1000,
                held_back_after=max(mine.holds_back_after, theirs),
                others_may_share=any(t is None or t.on_outage is OnOutage.SHARE for t in told))
