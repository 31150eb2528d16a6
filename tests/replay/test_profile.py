"""Sampling a model's profile: the shortcuts (a remembered place in the timeline, cached windows of TTFTs)
answer exactly what a fresh lookup answers, whatever order the simulation asks in."""

from __future__ import annotations

import bisect
import random
from array import array

from modelyard.errors import Reason
from modelyard.replay.profile import NEAR, ModelProfile, Source

_REASONS = list(Reason)


def _profile(rng: random.Random, n: int) -> ModelProfile:
    times = [rng.uniform(0, 10_000) for _ in range(n)]
    times = sorted(times + times[: n // 5])  # attempts that started at the same moment (a burst, retries)
    ttft = sorted((rng.randrange(50, 4000), rng.uniform(0.1, 3)) for _ in range(300))
    p = ModelProfile("m", Source.MEASURED, ttft=ttft, times=array("d", times),
                     fates=bytearray(rng.choice((0, 0, 0, 5, 9)) for _ in times), reached=len(times))
    p.failures[Reason.SERVER_ERROR] = n // 10
    return p


def _fate(p: ModelProfile, t: float) -> Reason | str | None:
    """The timeline's answer by a fresh bisection: the nearer logged attempt within NEAR ("rate" when there is
    none: the fate is then drawn at the measured rates)."""
    i = bisect.bisect_left(p.times, t)
    best, gap = -1, NEAR
    for j in (i - 1, i):
        if 0 <= j < len(p.times) and abs(p.times[j] - t) <= gap:
            best, gap = j, abs(p.times[j] - t)
    if best < 0:
        return "rate"
    code = p.fates[best]
    return None if code == 0 else _REASONS[code - 1]


def test_fate_matches_a_fresh_lookup_in_any_order() -> None:
    rng = random.Random(5)
    p = _profile(rng, 2000)
    rising = sorted(rng.uniform(-100, 10_100) for _ in range(3000))
    jumping = [rng.uniform(-100, 10_100) for _ in range(3000)]
    exact = [p.times[rng.randrange(len(p.times))] for _ in range(500)]  # ties with logged times
    for t in rising + jumping + exact + sorted(exact) + rising[::-1]:
        expected = _fate(p, t)
        got = p.fate(random.Random(0), t)
        if expected != "rate":
            assert got == expected, t


def test_ttft_sampling_draws_from_the_window_around_the_prompt_size() -> None:
    rng = random.Random(6)
    p = _profile(rng, 10)
    n = len(p.ttft)
    third = n // 3
    for size in [rng.randrange(0, 5000) for _ in range(400)] + [50, 4000, 0, 10**6]:
        seed = rng.random()
        i = bisect.bisect_left([s for s, _ in p.ttft], size)
        lo = max(0, min(i - third // 2, n - third))
        expected = p.ttft[lo + int(random.Random(seed).random() * third)][1]
        assert p.sample_ttft(random.Random(seed), size) == expected
