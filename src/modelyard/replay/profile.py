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
import math
import random
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from modelyard.errors import Reason
from modelyard.outcomes import AttemptOutcome
from modelyard.providers.speed import measured

#: a logged attempt this close in time stands for the model's condition then
NEAR = 60.0
RESERVOIR = 4096
#: reasons that say nothing about the model (the router decides them, or the caller left); ``too_slow`` is an attempt
#: the router cut to keep a later model of that chain its time (router/kept.py) — a candidate's own chain and
#: timeouts decide that again in the simulation, so it is not replayed as the model's fate (it was ``deadline``)
NOT_THE_MODELS = frozenset({Reason.QUEUE_TIMEOUT, Reason.QUEUE_FULL, Reason.COOLING_DOWN, Reason.MISSING_CREDENTIALS,
                            Reason.SPEND_CAP, Reason.UNAVAILABLE, Reason.DEADLINE, Reason.TOO_SLOW, Reason.CANCELLED,
                            Reason.CLIENT_STALLED})
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
    """A uniform sample of at most ``size`` of the items added. Once full, the index of the next item to
    keep is drawn ahead (Li's Algorithm L), so an item passed over costs nothing: a million-row log adds
    three million items and keeps a few tens of thousands."""

    def __init__(self, rng: random.Random, size: int = RESERVOIR):
        self.items: list = []
        self.seen = 0
        self._rng = rng
        self._size = size
        self._w = 1.0
        #: the count of items seen at which the next one is kept (valid once full)
        self._next = 0

    def _skip(self) -> None:
        random = self._rng.random
        self._w *= math.exp(math.log(1.0 - random()) / self._size)
        self._next += int(math.log(1.0 - random()) / math.log1p(-self._w)) + 1 if self._w < 1.0 else 1

    def add(self, item: object) -> None:
        self.extend((item,))

    def extend(self, batch: Sequence[object]) -> None:
        items, size, seen = self.items, self._size, self.seen
        j = 0
        if len(items) < size:
            j = min(size - len(items), len(batch))
            items.extend(batch[:j])
            if len(items) == size:
                self._next = seen + j
                self._skip()
        end = seen + len(batch)
        while self._next <= end and len(items) == size:
            items[self._rng.randrange(size)] = batch[self._next - seen - 1]
            self._skip()
        self.seen = end


def ttft_window(sizes: Sequence[int], prompt_tokens: int) -> tuple[int, int]:
    """(first index, width) of the samples a prompt of ``prompt_tokens`` draws its TTFT from (``sizes`` sorted)."""
    n = len(sizes)
    third = max(1, n // 3)
    left, right = bisect.bisect_left(sizes, prompt_tokens), bisect.bisect_right(sizes, prompt_tokens)
    if right - left >= third:
        return left, right - left
    return max(0, min((left + right) // 2 - third // 2, n - third)), third


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
    #: the TTFTs of :attr:`ttft` alone, and per prompt size asked where its window starts (sampling asks for
    #: the few hundred sizes a log holds a million times)
    _ttft_s: list[float] = field(default_factory=list, repr=False, compare=False)
    _window: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)
    #: where :meth:`fate` last found its time in :attr:`times` (asked in nearly increasing time order)
    _at: int = field(default=0, repr=False, compare=False)

    def failure_rate(self) -> float:
        return sum(self.failures.values()) / self.reached if self.reached else 0.0

    # -- sampling ---------------------------------------------------------------------------

    def sample_ttft(self, rng: random.Random, prompt_tokens: int) -> float:
        """A TTFT of an answered attempt with a prompt of similar size: a third of the samples centred on the
        prompts of this size — or all of those, when more than a third share it. (The samples are sorted by size,
        then TTFT: a window that began at the first of many prompts of the same size drew from their fastest
        third — a log whose prompts all had one size replayed 12–18% faster than it ran.)"""
        n = len(self.ttft)
        if n == 0:
            return 1.0
        if len(self._ttft_s) != n:
            self._sizes = [size for size, _ in self.ttft]
            self._ttft_s = [seconds for _, seconds in self.ttft]
            self._window = {}
        window = self._window.get(prompt_tokens)
        if window is None:
            window = self._window[prompt_tokens] = ttft_window(self._sizes, prompt_tokens)
        lo, width = window
        return self._ttft_s[lo + int(rng.random() * width)]

    def sample_tps(self, rng: random.Random) -> float:
        speeds = self.tokens_per_s
        return speeds[int(rng.random() * len(speeds))] if speeds else 20.0

    def sample_fail_after(self, rng: random.Random, reason: Reason) -> float:
        samples = self.fail_after.get(reason)
        return samples[int(rng.random() * len(samples))] if samples else 0.0

    def fate(self, rng: random.Random, t: float) -> Reason | None:
        """How an attempt starting at ``t`` ends: None (answers) or the reason it fails."""
        times = self.times
        n = len(times)
        # bisect_left(times, t), begun where the last call ended: a few steps on, not twenty probes
        i = self._at
        if i > n or (i > 0 and times[i - 1] >= t):
            i = bisect.bisect_left(times, t)
        else:
            end = min(n, i + 8)
            while i < end and times[i] < t:
                i += 1
            if i == end and i < n and times[i] < t:
                i = bisect.bisect_left(times, t, i)
        self._at = i
        # the nearer of the attempts just before and at/after t, within NEAR (times[i - 1] < t <= times[i])
        best = -1
        gap = NEAR
        if i > 0 and t - times[i - 1] <= gap:
            best, gap = i - 1, t - times[i - 1]
        if i < n and times[i] - t <= gap:
            best = i
        if best >= 0:
            code = self.fates[best]
            return None if code == 0 else _REASONS[code - 1]
        if not self.reached:
            return None
        k = int(rng.random() * self.reached)
        for reason, count in self.failures.items():
            if k < count:
                return reason
            k -= count
        return None


_REASONS: list[Reason] = list(Reason)
_CODE = {r: i + 1 for i, r in enumerate(_REASONS)}


#: a logged reason → (the Reason, its timeline code); strings the enum does not know are not in it
_LOGGED = {r.value: (r, _CODE[r]) for r in _REASONS}
_OK = AttemptOutcome.OK.value
_NOT_REACHED = frozenset({AttemptOutcome.SKIPPED.value, AttemptOutcome.CANCELLED.value})
#: output lengths kept per agent, for requests the log has no answer for
LENGTHS = 1024


class Profiler:
    """Builds every model's profile (and the answered output lengths per agent) from one pass over the
    log's attempts, a page of one model's rows at a time."""

    def __init__(self, seed: int = 0):
        self._rng = random.Random(seed)
        self._ttft: dict[str, _Reservoir] = {}
        self._tps: dict[str, _Reservoir] = {}
        self._fail: dict[tuple[str, Reason], _Reservoir] = {}
        self._lengths: dict[str, _Reservoir] = {}
        self.profiles: dict[str, ModelProfile] = {}

    def add_page(self, model: str, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of ``model``'s attempts in time order, columns as :data:`source.ATTEMPT_COLUMNS`."""
        p = self.profiles.get(model)
        if p is None:
            p = self.profiles[model] = ModelProfile(model, Source.MEASURED)
        ttfts: list[tuple[int, float]] = []
        speeds: list[float] = []
        lengths: dict[str, list[int]] = {}
        add_ttft, add_tps = ttfts.append, speeds.append
        times, fates, failures = p.times.append, p.fates.append, p.failures
        reached = 0
        for ts, agent, outcome, logged, ttft_ms, duration_ms, tokens_in, tokens_out, tokens_per_s, *_ in rows:
            tokens_out = tokens_out or 0
            if outcome == _OK and tokens_out:
                answered = lengths.get(agent)
                if answered is None:
                    answered = lengths[agent] = []
                answered.append(int(tokens_out))
            known = _LOGGED.get(logged) if logged is not None else None
            reason = known[0] if known is not None else None
            if outcome in _NOT_REACHED or reason in NOT_THE_MODELS:
                continue
            reached += 1
            if outcome == _OK and reason is None:
                times(ts)
                fates(0)
                if ttft_ms is not None:
                    add_ttft((int(tokens_in or 0), ttft_ms / 1000))
                tps = tokens_per_s
                if not tps and duration_ms and ttft_ms is not None:  # a row the router could not measure stays so
                    tps = measured(tokens_out, (duration_ms - ttft_ms) / 1000)  # (providers/speed.py)
                if tps:
                    add_tps(tps)
                continue
            if known is None:
                reason, code = Reason.INTERNAL_ERROR, _CODE[Reason.INTERNAL_ERROR]
            else:
                reason, code = known
            times(ts)
            fates(code)
            failures[reason] += 1
            if reason not in STALLS and duration_ms is not None:
                self._reservoir(self._fail, (model, reason)).add(duration_ms / 1000)
        p.reached += reached
        if ttfts:
            self._reservoir(self._ttft, model).extend(ttfts)
        if speeds:
            self._reservoir(self._tps, model).extend(speeds)
        for agent, answered in lengths.items():
            self._reservoir(self._lengths, agent, LENGTHS).extend(answered)

    def _reservoir(self, table: dict, key: object, size: int = RESERVOIR) -> _Reservoir:
        r = table.get(key)
        if r is None:
            r = table[key] = _Reservoir(self._rng, size)
        return r

    def finish(self) -> dict[str, ModelProfile]:
        for name, p in self.profiles.items():
            p.ttft = sorted(self._ttft[name].items) if name in self._ttft else []
            p.tokens_per_s = list(self._tps[name].items) if name in self._tps else []
            p.fail_after = {reason: list(r.items) for (model, reason), r in self._fail.items() if model == name}
            _sort_timeline(p)
        return self.profiles

    def lengths(self) -> dict[str, list[int]]:
        """Answered output lengths per agent (a sample of at most :data:`LENGTHS` each)."""
        return {agent: list(r.items) for agent, r in self._lengths.items()}


def _sort_timeline(p: ModelProfile) -> None:
    """Attempts arrive ordered by start time already; keep the arrays sorted if a page broke ties."""
    times = np.frombuffer(p.times, dtype=np.float64)
    if len(times) < 2 or bool(np.all(times[1:] >= times[:-1])):
        return
    order = np.argsort(times, kind="stable")
    p.times = array("d", times[order].tobytes())
    p.fates = bytearray(np.frombuffer(p.fates, dtype=np.uint8)[order].tobytes())


def stated_profile(name: str, ttft_s: float, tokens_per_s: float, failure_rate: float, source: Source
                   ) -> ModelProfile:
    """A profile from a few stated figures (probe results, a config's ``replay:``, or a default)."""
    p = ModelProfile(name, source, ttft=[(0, ttft_s)], tokens_per_s=[tokens_per_s])
    if failure_rate > 0:
        p.reached = 10_000
        p.failures[Reason.SERVER_ERROR] = round(failure_rate * 10_000)
    return p
