"""Choosing the threshold on the lower confidence bound of precision, not its point estimate."""

from __future__ import annotations

from modelyard.agents.evaluation import Outcome, choose_threshold, lowest_threshold, wilson


def outcomes() -> list[Outcome]:
    """200 decisions, most confident first: the top 100 all right, then 1 wrong in every 20."""
    return [Outcome("a", 1 - i / 1000, right=i < 100 or i % 20 != 0) for i in range(200)]


def test_the_bound_asks_for_more_than_the_point_estimate() -> None:
    rows = outcomes()
    point, bound = lowest_threshold(rows, 0.95), lowest_threshold(rows, 0.95, bound=True)
    assert point == rows[-1].confidence  # 195 of 200 right: 97.5%, so everything clears the point estimate
    assert point < bound < 1.0
    above = [o for o in rows if o.confidence >= bound]
    assert wilson(sum(o.right for o in above), len(above))[0] >= 0.95
    wider = [o for o in rows if o.confidence >= bound - 0.002]
    assert wilson(sum(o.right for o in wider), len(wider))[0] < 0.95


def test_choose_threshold_passes_the_bound_to_every_fold() -> None:
    rows = outcomes()
    point, bound = choose_threshold(rows, 0.95), choose_threshold(rows, 0.95, bound=True)
    assert bound.value > point.value and all(b >= p for b, p in zip(bound.folds, point.folds, strict=True))
    assert bound.coverage < point.coverage
