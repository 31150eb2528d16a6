"""Stop sequences cut at the gateway (gateway/stops.py): whole answers and streams cut at the same place."""

from __future__ import annotations

import pytest

from modelyard.gateway.stops import StopCutter, cut


@pytest.mark.parametrize(("pieces", "stops", "sent", "matched"), [
    (["Hello", " from", " fast."], ["m f"], "Hello fro", "m f"),  # across two pieces
    (["Hello", " from", " fast."], ["fast", "from"], "Hello ", "from"),  # the earliest, not the first listed
    (["Obs", "erv", "ation: x"], ["\nObservation:"], "Observation: x", None),  # held back, then let go
    (["a\nObs", "erv", "ation: x"], ["\nObservation:"], "a", "\nObservation:"),
    (["ab", "c"], [], "abc", None),
    (["ab", "c"], [""], "abc", None),  # an empty sequence stops nothing
    (["stop here"], ["stop"], "", "stop"),
])
def test_a_stream_and_a_whole_answer_are_cut_at_the_same_place(pieces, stops, sent, matched):
    cutter = StopCutter(stops)
    streamed = "".join(cutter.feed(p) for p in pieces) + cutter.flush()
    assert (streamed, cutter.matched) == (sent, matched) == cut("".join(pieces), stops)


def test_nothing_after_the_stop_is_sent():
    cutter = StopCutter(["END"])
    assert cutter.feed("oneEN") == "one" and cutter.feed("D two") == "" and cutter.feed("three") == ""
    assert cutter.flush() == "" and cutter.matched == "END"
