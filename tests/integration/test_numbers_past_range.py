"""A server's numbers past what a float holds, or a block index a float past an int: never internal_error.

Each field is one a real server sends beside its answer — Ollama's ``eval_count`` / ``eval_duration`` in ns
(docs.ollama.com/api/usage), llama-server's ``timings`` (``predicted_n`` in ``predicted_ms``, server-task.cpp
``to_json_oaicompat``), Hugging Face's ``estimated_time`` on a 503 while the model loads (transformers#23793), the
Messages stream's content block ``index`` (docs.anthropic.com, "Streaming Messages") — with an extreme value JSON
allows: an integer of 401 digits (Python reads it whole), a float that reads as infinity. Each was an OverflowError in
modelyard's arithmetic: ``internal_error`` (modelyard broke, it says), and for the timings a good answer lost for a
figure beside it. Now the figure is left out and the answer kept; an index that is no number is malformed_response.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_stream_keepalives_and_cuts import BLOCK, END, JSON, NDJSON, SSE, START, _complete, _router
from tests.integration.test_stream_keepalives_and_cuts import _fresh as _fresh  # the servers reset, the key set
from tests.integration.test_stream_keepalives_and_cuts import servers as servers  # the fixture

from modelyard.errors import ProviderError, Reason, provider_failure

HUGE = "1" + "0" * 400
#: stands for HUGE in a body written with json.dumps (which cannot write an integer it was not given)
_MARK = "@HUGE@"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")).replace(f'"{_MARK}"', HUGE)


LLAMA_TIMINGS = Fault.raw(200, "data: " + _json({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi there"},
                                                                         "finish_reason": None}]}) + "\n\n",
                          "data: " + _json({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                                            "timings": {"predicted_n": _MARK, "predicted_ms": 0.5, "prompt_n": 3,
                                                        "prompt_ms": _MARK}}) + "\n\ndata: [DONE]\n\n",
                          headers=SSE)
OLLAMA_DURATIONS = Fault.raw(200, _json({"model": "m", "message": {"role": "assistant", "content": "Hi there"},
                                         "done": False}) + "\n",
                             _json({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
                                    "done_reason": "stop", "eval_count": _MARK, "eval_duration": 1,
                                    "prompt_eval_duration": _MARK, "load_duration": _MARK}) + "\n", headers=NDJSON)


@pytest.mark.parametrize(("kind", "fault"), [("openai", LLAMA_TIMINGS), ("ollama", OLLAMA_DURATIONS)],
                         ids=["llama_server_timings", "ollama_durations"])
async def test_timings_past_a_float_leave_the_figure_out_and_keep_the_answer(servers: dict[str, Any], kind: str,
                                                                            fault: Fault) -> None:
    """The answer is the model's, its speed figure left out (it was internal_error, the answer given to the backup)."""
    servers[kind].push(fault)
    routed = await _complete(_router(kind, servers))
    assert routed.response.text == "Hi there"
    assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [("primary", "ok", None)]
    assert routed.record.tokens_per_s is None


async def test_an_estimated_time_past_a_float_is_no_estimate(servers: dict[str, Any]) -> None:
    """A 503 "currently loading" whose ``estimated_time`` is past a float: overloaded as without one (it was
    internal_error: not retried, and the model counted as broken)."""
    servers["openai"].push(Fault.raw(503, _json({"error": "Model is currently loading", "estimated_time": _MARK}),
                                     headers=JSON), times=2)
    routed = await _complete(_router("openai", servers))
    assert routed.response.text == "backup answer"
    assert [(a.outcome, a.reason) for a in routed.record.attempts][:2] == [("retry", "overloaded"),
                                                                           ("fallback", "overloaded")]


async def test_an_anthropic_block_index_past_an_int_is_malformed(servers: dict[str, Any]) -> None:
    """``"index": 1e400`` reads as infinity: malformed_response, the next model asked (it was internal_error)."""
    servers["anthropic"].push(Fault.raw(200, START, BLOCK.replace('"index":0', '"index":1e400'), END, headers=SSE))
    routed = await _complete(_router("anthropic", servers))
    assert routed.response.text == "backup answer"
    first = routed.record.attempts[0]
    assert (first.outcome, first.reason) == ("fallback", "malformed_response"), first


@pytest.mark.parametrize("exc", [OverflowError("int too large to convert to float"), ZeroDivisionError("division by "
                                 "zero"), RecursionError("maximum recursion depth exceeded")])
def test_arithmetic_on_a_servers_numbers_is_malformed_not_internal(exc: Exception) -> None:
    """The net under every provider (errors.provider_failure): arithmetic that a server's numbers broke is data of an
    unexpected shape, as a TypeError on them is — not internal_error, which says modelyard broke."""
    failure = provider_failure(exc)
    assert isinstance(failure, ProviderError) and failure.reason is Reason.MALFORMED_RESPONSE


@pytest.mark.parametrize(("last", "want"), [
    ({"done_reason": {"type": "stop"}}, ("Hi there", None)),
    ({"message": {"role": "assistant", "content": "", "tool_calls": {"function": {"name": "f"}}}},
     ("backup answer", "message.tool_calls is a dict, not a list")),
], ids=["done_reason_object", "tool_calls_object"])
async def test_ollama_fields_of_another_type(servers: dict[str, Any], last: dict[str, Any],
                                             want: tuple[str, str | None]) -> None:
    """Ollama writes ``done_reason`` as a word and ``tool_calls`` as a list (docs.ollama.com/api/chat); a relay or
    another server in its place may not. A ``done_reason`` that is no word is no reason said — the answer is kept (it
    was "TypeError: unhashable type: 'dict'", the answer lost); ``tool_calls`` that is no list is malformed in words
    that say so (it was "AttributeError: 'str' object has no attribute 'get'")."""
    servers["ollama"].push(Fault.raw(200, _json({"model": "m", "message": {"role": "assistant", "content": "Hi there"},
                                                 "done": False}) + "\n",
                                     _json({"model": "m", "message": {"role": "assistant", "content": ""},
                                            "done": True, **last}) + "\n", headers=NDJSON))
    routed = await _complete(_router("ollama", servers))
    assert routed.response.text == want[0]
    assert (routed.record.attempts[0].detail or None) == want[1]
