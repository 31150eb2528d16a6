"""Second reading of session 31's landings (review31): defects found in what landed, each with the test that failed on
the landed code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, SSE, event
from tests.integration.test_wire_shapes_round3 import outcomes, route
from tests.reliability.test_wire_shapes_hunt31 import START, TEXT, _numbered, _stop_delta

from modelyard.errors import Reason


async def test_message_stop_over_two_data_lines_without_usage_is_answered(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """An SSE event's data may come on several ``data:`` lines, joined by a newline (WHATWG server-sent events,
    "the data buffer"); the provider joins them (``held``). With no usage before ``message_stop``, 70c1a49 looked the
    joined event up in the batch as read to find what came after it: not there, a ValueError — the whole answer lost
    as malformed_response and asked of the next model. Now the answer, and the usage after it still read."""
    stop = 'event: message_stop\ndata: {"type":\ndata: "message_stop"}\n\n'
    late = event("message_delta", {"type": "message_delta", "delta": {},
                                   "usage": {"input_tokens": 31, "output_tokens": 17}})
    routed = await route("anthropic", servers, tmp_path,
                         Fault.raw(200, START, TEXT, _stop_delta(None), stop + late, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_an_error_event_written_over_several_data_lines_keeps_its_type(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """An ``event: error`` whose JSON is pretty-printed over several ``data:`` lines (joined by the reader: WHATWG
    server-sent events; the provider's ``held``): e7650b3 took its first line (``{``) for the server's error in words
    — reason stream_error, the detail 'error mid-stream: {' — where it was read whole before: overloaded, with the
    server's words. Anthropic's overloaded_error is documented as an SSE error event
    (docs.anthropic.com/en/api/messages-streaming, "Error events")."""
    err = ('event: error\ndata: {\ndata:   "type": "error",\ndata:   "error": {"type": "overloaded_error", '
           '"message": "Overloaded"}\ndata: }\n\n')
    routed = await route("anthropic", servers, tmp_path, Fault.raw(200, START, err, headers=SSE))
    first = routed.record.attempts[0]
    assert first.reason is Reason.OVERLOADED, (first.reason, first.detail)
    assert first.detail is not None and "Overloaded" in first.detail


async def test_choices_that_come_out_of_order_are_not_mixed(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Several choices (``n`` > 1, a proxy's or a server's default) whose first chunk is choice 1's: a valid order
    (openai/openai-python#3709: "a valid ``1 -> 0 -> 1`` sequence" of streamed choice indexes). 70c1a49 took a first
    choice numbered 1 for the lone choice (litellm#3678) and then read choice 0 as well: the answer was the two
    choices' words interleaved ('RaSunin.ny.'). Now one choice, whole: the one read first."""
    fault = Fault.raw(200, _numbered(1, {"role": "assistant", "content": "Ra"}),
                      _numbered(0, {"role": "assistant", "content": "Sun"}), _numbered(1, {"content": "in."}),
                      _numbered(0, {"content": "ny."}), _numbered(1, {}, "stop"), _numbered(0, {}, "stop"), DONE,
                      headers=SSE)
    routed = await route("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text in ("Rain.", "Sunny."), routed.response.text
