"""Choosing the threshold on the lower confidence bound of precision, not its point estimate."""

from __future__ import annotations

from modelyard.agents.evaluation import (
    Labelled,
    MessageKind,
    Outcome,
    choose_threshold,
    lowest_threshold,
    message_kind,
    summarise,
    wilson,
)


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


def test_a_population_held_out_whole_shows_what_five_folds_hide() -> None:
    """Round 12: 5-fold calibration mixes populations, so each held-out fold has its siblings in the part that
    chose the threshold. Here population "b" is confidently wrong on one line in seven, "a" never: 5-fold
    promises over 90%, holding "b" out whole (its threshold chosen on "a" alone) shows it gets 86%."""
    a = [Outcome("x", 0.99 - i / 1000, right=True) for i in range(100)]
    b = [Outcome("x", 0.99 - i / 1000, right=i % 7 != 3) for i in range(100)]
    rows, groups = a + b, ["a"] * 100 + ["b"] * 100
    mixed = choose_threshold(rows, 0.9)
    apart = choose_threshold(rows, 0.9, groups=groups)
    assert mixed.precision is not None and mixed.precision > 0.9 and not mixed.held
    assert list(apart.held) == ["a", "b"] and len(apart.folds) == 2
    assert apart.held["b"] == (86, 100, 100)  # "a" alone sets the line at its lowest confidence: all of "b" passes
    right, decided, n = apart.held["a"]
    assert right == decided and n == 100
    assert apart.precision is not None and apart.precision < mixed.precision
    assert apart.value == mixed.value  # the threshold itself is chosen on everything, as before
    single = choose_threshold(rows, 0.9, groups=["a"] * 200)  # one population: 5-fold, as without groups
    assert (single.value, single.precision, single.folds, single.held) == (mixed.value, mixed.precision,
                                                                           mixed.folds, {})


def test_message_kinds() -> None:
    """Round 8: the kinds the examples cover least — long messages and non-Latin scripts — told apart."""
    assert message_kind("write a poem about the sea") is MessageKind.SHORT
    assert message_kind("Écris un poème sur la mer, s'il te plaît") is MessageKind.SHORT  # accented Latin
    assert message_kind("напиши стихи про море") is MessageKind.NON_LATIN
    assert message_kind("写一首关于大海的诗 please") is MessageKind.NON_LATIN
    assert message_kind("Why does this fail?\n" + "x = 1\n" * 200) is MessageKind.LONG
    assert message_kind("请解释这段代码：\n" + "解释" * 600) is MessageKind.NON_LATIN  # script first, then length
    assert message_kind("12345 !!!") is MessageKind.SHORT  # no letters


def test_summary_per_kind_of_message() -> None:
    """Overall figures hide a weak kind: here every short line is right and every non-Latin one wrong."""
    rows = [Labelled("hello there", ["chat"]), Labelled("write a poem", ["writer"]),
            Labelled("напиши стихи про море", ["writer"]), Labelled("写一首诗", ["writer"]),
            Labelled("fix this:\n" + "x = 1\n" * 200, ["engineer"])]
    outcomes = [Outcome("chat", 0.99, True), Outcome("writer", 0.5, True), Outcome("research", 0.95, False),
                Outcome("research", 0.3, False), Outcome("engineer", 0.97, True)]
    by_kind = summarise(rows, outcomes, 0.92, ["chat", "engineer", "research", "writer"])["by_kind"]
    assert list(by_kind) == ["short", "long", "non-Latin"]
    assert by_kind["short"]["accuracy"]["value"] == 1.0 and by_kind["short"]["coverage"] == 0.5
    assert by_kind["short"]["above_threshold"]["n"] == 1 and by_kind["short"]["above_threshold"]["value"] == 1.0
    assert by_kind["non-Latin"]["accuracy"]["value"] == 0.0 and by_kind["non-Latin"]["accuracy"]["n"] == 2
    assert by_kind["non-Latin"]["above_threshold"]["value"] == 0.0 and by_kind["non-Latin"]["coverage"] == 0.5
    assert by_kind["long"]["above_threshold"]["value"] == 1.0
    only_short = summarise(rows[:2], outcomes[:2], 0.92, ["chat", "writer"])["by_kind"]
    assert list(only_short) == ["short"]  # no empty rows for kinds the file lacks
