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
        sizes = [s for s, _ in p.ttft]
        left, right = bisect.bisect_left(sizes, size), bisect.bisect_right(sizes, size)
        lo, width = (left, right - left) if right - left >= third else (
            max(0, min((left + right) // 2 - third // 2, n - third)), third)
        expected = p.ttft[lo + int(random.Random(seed).random() * width)][1]
        assert p.sample_ttft(random.Random(seed), size) == expected


def test_prompts_of_one_size_draw_from_all_their_ttfts_not_the_fastest_third() -> None:
    """Samples sort by (size, TTFT): the window began at the first prompt of the size asked for, so a log whose
    prompts all had one size drew from its fastest third (replayed latency 12-18% low)."""
    p = ModelProfile("m", Source.MEASURED, ttft=[(50, t / 100) for t in range(100)])
    rng = random.Random(1)
    draws = [p.sample_ttft(rng, 50) for _ in range(3000)]
    assert 0.45 < sum(draws) / len(draws) < 0.54  # the mean of all of them, 0.495 (the fastest third: 0.165)
    assert max(draws) > 0.9


def _rows(reason: str, n: int = 10) -> list[tuple]:
    """ATTEMPT_COLUMNS rows: n answers, then n attempts that ended with ``reason`` and moved on."""
    ok = [(1000.0 + i, "chat", "ok", None, 400.0, 1400.0, 50, 20, 20.0, f"r{i}", 0) for i in range(n)]
    cut = [(2000.0 + i, "chat", "fallback", reason, None, 3000.0, 50, 3, 1.0, f"c{i}", 0) for i in range(n)]
    return ok + cut


def test_an_attempt_cut_to_keep_a_later_model_its_time_is_not_replayed_as_the_models_failure() -> None:
    """``too_slow`` (since 2026-12-02; such cuts were logged ``deadline``) is decided by the chain and timeouts the
    request had: a candidate config decides it again in the simulation. Replayed as the model's fate it failed half of
    the model's requests "as logged", whatever the candidate's timeouts."""
    from modelyard.replay.profile import Profiler

    profiles = {}
    for reason in ("deadline", "too_slow", "server_error"):
        profiler = Profiler(seed=1)
        profiler.add_page("m", _rows(reason))
        profiles[reason] = profiler.finish()["m"]
    assert profiles["deadline"].failure_rate() == 0.0
    assert profiles["too_slow"].failure_rate() == 0.0 and Reason.TOO_SLOW not in profiles["too_slow"].failures
    assert profiles["server_error"].failure_rate() == 0.5  # the model's own failure is replayed
