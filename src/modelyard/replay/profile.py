"""What each model did in the log: its service times, and its condition over time.

*Service times*: TTFT (by prompt size: short, medium, long prompts) and tokens/s, sampled from
the attempts that answered. *Condition*: every attempt that reached the model, in time order,
with how it ended. A simulated attempt at time t takes the fate of the logged attempt nearest
to t (within :data:`NEAR`): an outage, a burst of 429s or a stalled server replays when it
happened, whatever config is replayed — the backend was down then either way. Where the log
saw no attempt near t, the fate is drawn at the model's measured failure rates.

Memory stays bounded: samples are reservoirs; the condition timeline is two compact arrays
(8 + 1 bytes per attempt).
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from modelyard.errors import Reason
from modelyard.outcomes import AttemptOutcome
from modelyard.replay.source import LoggedAttempt

#: a logged attempt this close in time stands for the model's condition then
NEAR = 60.0
RESERVOIR = 4096
#: reasons that say nothing about the model (the router decides them, or the caller left)
NOT_THE_MODELS = frozenset({Reason.QUEUE_TIMEOUT, Reason.COOLING_DOWN, Reason.MISSING_CREDENTIALS,
                            Reason.UNAVAILABLE, Reason.DEADLINE, Reason.CANCELLED})
#: reasons that are a silence the candidate's own bounds decide, not an answer
STALLS = frozenset({Reason.FIRST_TOKEN_TIMEOUT, Reason.IDLE_TIMEOUT})


class Source(StrEnum):
    """Where a model's figures come from; anything but MEASURED is said in the output."""

    MEASURED = "measured in the log"
    BENCHED = "from `modelyard bench`"
    PROBED = "from `modelyard probe`"
    STATED = "stated in the config (replay:)"
    ASSUMED = "assumed (no data)"


class _Reservoir:
    def __init__(self, rng: random.Random, size: int = RESERVOIR):
        self.items: list = []
        self.seen = 0
        self._rng = rng
        self._size = size

    def add(self, item: object) -> None:
        self.seen += 1
        if len(self.items) < self._size:
            self.items.append(item)
        else:
            k = self._rng.randrange(self.seen)
            if k < self._size:
                self.items[k] = item


@dataclass
class ModelProfile:
    name: str
    source: Source
    #: (prompt tokens, TTFT s) of answered attempts, sorted by prompt tokens
    ttft: list[tuple[int, float]] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    #: seconds an attempt took to fail, per reason
    fail_after: dict[Reason, list[float]] = field(default_factory=dict)
    #: per attempt that reached the model: its start time and fate (0 = answered, else 1 + reason index)
    times: array = field(default_factory=lambda: array("d"))
    fates: bytearray = field(default_factory=bytearray)
    reached: int = 0
    failures: Counter = field(default_factory=Counter)
    #: the prompt sizes of :attr:`ttft` alone (bisecting ints is several times cheaper than tuples)
    _sizes: list[int] = field(default_factory=list, repr=False)

    def failure_rate(self) -> float:
        return sum(self.failures.values()) / self.reached if self.reached else 0.0

    # -- sampling ---------------------------------------------------------------------------

    def sample_ttft(self, rng: random.Random, prompt_tokens: int) -> float:
        """A TTFT of an answered attempt with a prompt of similar size (a third of the samples around it)."""
        n = len(self.ttft)
        if n == 0:
            return 1.0
        if len(self._sizes) != n:
            self._sizes = [size for size, _ in self.ttft]
        i = bisect.bisect_left(self._sizes, prompt_tokens)
        third = max(1, n // 3)
        lo = max(0, min(i - third // 2, n - third))
        return self.ttft[lo + rng.randrange(third)][1]

    def sample_tps(self, rng: random.Random) -> float:
        return self.tokens_per_s[rng.randrange(len(self.tokens_per_s))] if self.tokens_per_s else 20.0

    def sample_fail_after(self, rng: random.Random, reason: Reason) -> float:
        samples = self.fail_after.get(reason)
        return samples[rng.randrange(len(samples))] if samples else 0.0

    def fate(self, rng: random.Random, t: float) -> Reason | None:
        """How an attempt starting at ``t`` ends: None (answers) or the reason it fails."""
        times = self.times
        i = bisect.bisect_left(times, t)
        best = -1
        gap = NEAR
        for j in (i - 1, i):
            if 0 <= j < len(times) and abs(times[j] - t) <= gap:
                best, gap = j, abs(times[j] - t)
        if best >= 0:
            code = self.fates[best]
            return None if code == 0 else _REASONS[code - 1]
        if not self.reached:
            return None
        k = rng.randrange(self.reached)
        for reason, count in self.failures.items():
            if k < count:
                return reason
            k -= count
        return None


_REASONS: list[Reason] = list(Reason)
_CODE = {r: i + 1 for i, r in enumerate(_REASONS)}


class Profiler:
    """Builds every model's profile from one pass over the log's attempts."""

    def __init__(self, seed: int = 0):
        self._rng = random.Random(seed)
        self._ttft: dict[str, _Reservoir] = {}
        self._tps: dict[str, _Reservoir] = {}
        self._fail: dict[tuple[str, Reason], _Reservoir] = {}
        self.profiles: dict[str, ModelProfile] = {}

    def add(self, a: LoggedAttempt) -> None:
        reason = Reason(a.reason) if a.reason in _REASON_VALUES else None
        if a.outcome in (AttemptOutcome.SKIPPED, AttemptOutcome.CANCELLED) or reason in NOT_THE_MODELS:
            return
        p = self.profiles.get(a.model)
        if p is None:
            p = self.profiles[a.model] = ModelProfile(a.model, Source.MEASURED)
        p.reached += 1
        if a.outcome == AttemptOutcome.OK and reason is None:
            p.times.append(a.ts)
            p.fates.append(0)
            if a.ttft_ms is not None:
                self._reservoir(self._ttft, a.model).add((a.tokens_in, a.ttft_ms / 1000))
            tps = a.tokens_per_s
            if not tps and a.tokens_out > 1 and a.duration_ms and a.ttft_ms is not None:
                gen = (a.duration_ms - a.ttft_ms) / 1000
                tps = (a.tokens_out - 1) / gen if gen > 0 else None
            if tps:
                self._reservoir(self._tps, a.model).add(tps)
            return
        if reason is None:
            reason = Reason.INTERNAL_ERROR
        p.times.append(a.ts)
        p.fates.append(_CODE[reason])
        p.failures[reason] += 1
        if reason not in STALLS and a.duration_ms is not None:
            self._reservoir(self._fail, (a.model, reason)).add(a.duration_ms / 1000)

    def _reservoir(self, table: dict, key: object) -> _Reservoir:
        r = table.get(key)
        if r is None:
            r = table[key] = _Reservoir(self._rng)
        return r

    def finish(self) -> dict[str, ModelProfile]:
        for name, p in self.profiles.items():
            p.ttft = sorted(self._ttft[name].items) if name in self._ttft else []
            p.tokens_per_s = list(self._tps[name].items) if name in self._tps else []
            p.fail_after = {reason: list(r.items) for (model, reason), r in self._fail.items() if model == name}
            _sort_timeline(p)
        return self.profiles


def _sort_timeline(p: ModelProfile) -> None:
    """Attempts arrive ordered by start time already; keep the arrays sorted if a page broke ties."""
    times = p.times
    if all(times[i] <= times[i + 1] for i in range(len(times) - 1)):
        return
    order = sorted(range(len(times)), key=times.__getitem__)
    p.times = array("d", (times[i] for i in order))
    p.fates = bytearray(p.fates[i] for i in order)


_REASON_VALUES = frozenset(r.value for r in Reason)


def stated_profile(name: str, ttft_s: float, tokens_per_s: float, failure_rate: float, source: Source
                   ) -> ModelProfile:
    """A profile from a few stated figures (probe results, a config's ``replay:``, or a default)."""
    p = ModelProfile(name, source, ttft=[(0, ttft_s)], tokens_per_s=[tokens_per_s])
    if failure_rate > 0:
        p.reached = 10_000
        p.failures[Reason.SERVER_ERROR] = round(failure_rate * 10_000)
    return p
