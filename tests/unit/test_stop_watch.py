"""The router's watch for a client's stop sequences (router/stop_watch.py): it must see a sequence exactly where the
gateway's cutter (gateway/stops.py) does, or the stream would be closed before the text the client is sent, or not
at all."""

from __future__ import annotations

import pytest

from modelyard.gateway.stops import StopCutter
from modelyard.router.stop_watch import StopWatch, watched
from modelyard.types import ChatRequest, Message, ToolDefinition


@pytest.mark.parametrize(("pieces", "stops"), [
    (["Hello", " from", " fast."], ("m f",)),  # across two pieces
    (["Hello", " from", " fast."], ("fast", "from")),  # the earliest, not the first listed
    (["Obs", "erv", "ation: x"], ("\nObservation:",)),  # begun, then not one
    (["a\nObs", "erv", "ation: x"], ("\nObservation:",)),  # across three pieces
    (["x", "\n", "y"], ("\n",)),
])
def test_the_watch_sees_a_sequence_at_the_piece_the_cutter_does(pieces, stops):
    watch, cutter = StopWatch(stops), StopCutter(stops)
    for piece in pieces:
        cutter.feed(piece)
        assert watch.reached(piece) == (cutter.matched is not None)
        if cutter.matched is not None:
            assert watch.matched == cutter.matched
            break


def test_stop_and_the_messages_apis_unsent_sequences_are_watched_but_not_with_tools():
    ask = ChatRequest([Message("user", "hi")], stop=["\n", ""], cut_at=["END"])
    assert watched(ask) == ("\n", "END")
    tool = ToolDefinition(name="f", description="", parameters={"type": "object"})
    ask.tools = [tool]
    assert watched(ask) == ()  # a call may follow the text: the answer is read whole
