"""bench_routing_learn.py's statistics (issue #10's learning target: "without lowering it elsewhere").

The bench's verdict on "elsewhere" is a sign test on the paired flips (fixed / broke); the README quotes its
p-values (0 fixed / 4 broken: p = 0.125), so they are checked here against the exact binomial values.
The empty-set case the bench once divided by zero on is now handled inline in ``main`` (``n=0``).
"""
from __future__ import annotations

import math

import pytest
from benchmarks.bench_routing_learn import share, sign_test


def test_the_sign_test_is_the_exact_two_sided_binomial() -> None:
    assert sign_test(0, 0) == 1.0  # no flips: nothing to tell
    assert sign_test(0, 4) == pytest.approx(0.125)  # the four broken elsewhere of round 12: 2 * (1/2)^4
    assert sign_test(12, 0) == pytest.approx(2 / 2**12)
    assert sign_test(3, 5) == sign_test(5, 3)  # two-sided: the direction does not matter
    assert sign_test(55, 37) == pytest.approx(
        min(1.0, 2 * sum(math.comb(92, k) for k in range(38)) / 2**92))
    assert sign_test(5, 5) == 1.0  # a balance is capped at 1, not 2 * P(X <= 5) > 1


def test_a_share_is_printed_with_its_wilson_interval() -> None:
    text = share(53, 60)
    assert text.strip().startswith("88.3%")
    low, high = (float(x.rstrip("%)")) for x in text.split("(")[1].split("–"))
    assert low < 88.3 < high and 75 < low < 80 and 94 < high < 97
