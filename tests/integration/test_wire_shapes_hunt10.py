"""The tenth fault hunt (faults23): shapes real servers and relays send that modelyard's fakes never did, each
rebuilt from the report where its users met it (cited per test and in ``tests/fakes/relays.py``), replayed through
the router.

- Gemini's error object written bare mid-stream, pretty-printed over lines of its own (OmniRoute#4177): its 503
  says overloaded, not malformed_response;
- the chunks of a tool call written back to back in one event (``{…}{…}``): the call read, as glued text chunks are;
- ``"finish_reason": "null"``, a string, on every chunk (KoboldCpp, AIShell#350): no finish reason, so a stream that
  breaks after it is a dropped connection, not a whole answer;
- Gemini's ``UNEXPECTED_TOOL_CALL`` and ``TOO_MANY_TOOL_CALLS`` passed on by a gateway: the call lost, an unusable
  answer, not its preamble passed on as whole;
- Mistral's ``model_length``: a truncated answer, not a finished one;
- LiteLLM's ``budget_exceeded`` (a 429 or a 400): an account that cannot pay, cooled, not a rate limit or a bad request.

Each failed on the code before this hunt, but the guards at the end (named so), which held already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.fakes.relays import bare_error_midstream, glued_tool_chunks, null_finish_stream
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, SSE, call, chunk, fn
from tests.integration.test_wire_shapes_round3 import PARIS, outcomes, route, route_cooling

# -- an error object written bare mid-stream, pretty-printed -----------------------------------------------------------

async def test_a_bare_pretty_printed_error_mid_stream_is_the_servers_503(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """OmniRoute#4177 quotes Gemini's stream: two chunks of thinking, then — without ``data:`` — ``{\\n  "error": {\\n
    "code": 503,\\n    "message": "This model is currently experiencing high demand. …",\\n    "status":
    "UNAVAILABLE"\\n  }\\n}``. A relay that copies the upstream's bytes passes it on so. Its ``{`` line was read as an
    event that lost its prefix, the next (``  "error": {``) as a field no stream has: malformed_response — never asked
    again, counted as a broken model — where the server said it is overloaded. Now the document's lines are its data:
    overloaded, as any 503 mid-stream: asked again, then the next model."""
    routed = await route("openai", servers, tmp_path, bare_error_midstream(), bare_error_midstream())
    assert outcomes(routed) == [("primary", "retry", "overloaded"), ("primary", "fallback", "overloaded"),
                                ("backup", "ok", None)]
    assert "high demand" in (routed.record.attempts[0].detail or "")


# -- tool-call chunks glued back to back in one event -----------------------------------------------------------------

async def test_tool_call_chunks_glued_in_one_event_are_the_call(servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """openai-python#663: a server's stream whose one event held two chunks back to back, ``{…}{…}``. Text chunks so
    glued were read since round 13, but a tool call's pieces (its name, then its arguments a few characters a chunk,
    each chunk with OpenAI's ``"content": null, "refusal": null``) were not: malformed_response, the next model asked
    for a call the primary had made. Now the pieces are read in order: the call, with its arguments."""
    routed = await route("openai", servers, tmp_path,
                         glued_tool_chunks("get_weather", ['{"ci', 'ty": "Par', 'is"}']))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [("get_weather", PARIS, "call_1")]


# -- "finish_reason": "null", a string ---------------------------------------------------------------------------------

async def test_a_finish_reason_of_the_string_null_is_no_end(servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """KoboldCpp's chat stream put ``"finish_reason": "null"`` — the string — on every chunk until the last
    (PowerShell/AIShell#350, fixed in LostRuins/koboldcpp@c55bb9a6; servers of that age still run). Read as a finish
    reason, the first chunk made the answer whole: a stream that then broke (closed cleanly after "It's", as a relay
    whose upstream went away ends it) was passed on as the whole answer, its finish reason "null". Now it is no finish
    reason: the break is a dropped connection, asked again, and the whole answer comes with the last chunk's
    "stop"."""
    routed = await route("openai", servers, tmp_path, null_finish_stream(["It", "'s"], ended=False),
                         null_finish_stream(["It", "'s", " sunny."], ended=True))
    assert outcomes(routed) == [("primary", "retry", "connection_dropped"), ("primary", "ok", None)]
    assert routed.response.text == "It's sunny."
    assert routed.record.finish_reason == "stop"


# -- Gemini's other finish reasons for a call it could not make ----------------------------------------------------

@pytest.mark.parametrize("finish", ["UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
async def test_a_tool_call_gemini_could_not_make_is_an_unusable_answer(finish: str, servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """Gemini's FinishReason has, beside ``MALFORMED_FUNCTION_CALL`` (read since hunt8), ``UNEXPECTED_TOOL_CALL`` —
    "Model generated a tool call but no tools were enabled in the request"; its ``finish_message`` names the call:
    "Model tried to call an undeclared function: undeclaredTool" (epam/ai-dial-adapter-vertexai#325) — and
    ``TOO_MANY_TOOL_CALLS``, "Model called too many tools consecutively, thus the system exited execution" (the API
    reference, as google-gemini-php/client#137 quotes it). Gateways pass Gemini's reasons on in capitals
    (qwen-code#9884). The preamble before them was passed on as the whole answer, the turn's call lost. Now an unusable
    answer, as a malformed call: the next model at once, this one not marked sick."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        200, chunk({"role": "assistant", "content": "Let me check the weather."}), chunk({}, finish), DONE,
        headers=SSE))
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)] and cooling == 0


# -- Mistral's "model_length" ---------------------------------------------------------------------------------------

async def test_mistrals_model_length_is_a_truncated_answer(servers: dict[str, Any],  # noqa: F811
                                                           tmp_path: Path) -> None:
    """Mistral's API ends an answer cut where the model's context ran out with ``finish_reason: "model_length"`` (its
    OpenAPI spec's finish_reason enum: stop, length, model_length, error, tool_calls; laravel/ai#955 maps it to
    Length for that reason; inspect_ai#514). Not known as a truncation, the cut answer was logged and passed on with
    "model_length" as a finished one. Now a truncation, as Anthropic's ``model_context_window_exceeded``: the log and
    the gateway say "length"."""
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, chunk({"role": "assistant", "content": "The first part of a long"}), chunk({}, "model_length"), DONE,
        headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "The first part of a long"
    assert routed.record.finish_reason == "length"


# -- guards: shapes checked and already held ------------------------------------------------------------------------

#: a relay's error whose message is Gemini's own error document as text (continue#10639, #10903, #12667: "{\n
#: \"error\": {\n    \"code\": 503, …") with the status as its code, inside the 200 stream
RELAYED_GEMINI_503 = {"error": {"message": "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"This model is "
                                           "currently experiencing high demand. Spikes in demand are usually "
                                           "temporary. Please try again later.\",\n    \"status\": \"UNAVAILABLE\"\n"
                                           "  }\n}\n", "code": 503, "status": "Service Unavailable"}}


async def test_guard_gemini_503_relayed_as_text_in_an_error_is_overloaded(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """A guard (held before this hunt): continue's users quote a relay's error whose ``message`` is Gemini's error
    document as text, its 503 in ``code`` (continue#10639). Read by its code: overloaded, asked again, then the next
    model."""
    routed = await route("openai", servers, tmp_path, *[Fault.raw(200, chunk({"role": "assistant", "content": ""}),
                                                                  "data: " + json.dumps(RELAYED_GEMINI_503) + "\n\n",
                                                                  headers=SSE)] * 2)
    assert outcomes(routed) == [("primary", "retry", "overloaded"), ("primary", "fallback", "overloaded"),
                                ("backup", "ok", None)]


async def test_guard_parallel_calls_all_at_index_0_with_their_own_ids_are_two_calls(servers: dict[str, Any],  # noqa: F811
                                                                                   tmp_path: Path) -> None:
    """A guard (held before this hunt): servers that put every parallel call at ``index: 0`` — Ollama's /v1
    (ollama#15457), Gemini through gcli2api (su-kaka/gcli2api#406: "index=0 {"city":"北京"} / index=0 …"), each in its
    own chunk with its own id and name — and Gemini's OpenAI-compatible stream ending a tool-call turn with "stop"
    (googleapis/python-genai#2868). Clients that key calls by index joined them into one (``{…}{…}``,
    hermes-agent#62937); modelyard's calls are kept apart by their ids."""
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, call(index=0, id="call_a1", type="function", function=fn("get_weather", '{"city": "Paris"}')),
        call(index=0, id="call_b2", type="function", function=fn("get_weather", '{"city": "Rome"}')),
        chunk({}, "stop"), DONE, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [
        ("get_weather", PARIS, "call_a1"), ("get_weather", {"city": "Rome"}, "call_b2")]


# -- LiteLLM's spent budget --------------------------------------------------------------------------------------------

#: LiteLLM's proxy refusing a virtual key whose budget is spent, as litellm#36729 quotes it (a 429 since the budget
#: errors were normalised; litellm#4606 gave them the type, and they came as 400s before: litellm#14144)
LITELLM_BUDGET = {"error": {"message": "Budget has been exceeded! Current cost: 10.51, Max budget: 10.00",
                            "type": "budget_exceeded", "code": "429"}}


@pytest.mark.parametrize("status", [429, 400])
async def test_a_spent_litellm_budget_cools_as_an_account_that_cannot_pay(status: int, servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """LiteLLM's ``budget_exceeded``: a key's, team's or model's spend reached its ``max_budget`` — no request passes
    until an administrator raises it or its period turns. As a 429 it was a rate limit (asked again after a backoff for
    the same refusal, the model cooled for the breaker's second, then refused on every request); as a 400 a bad
    request (asked every time). Now an account that cannot pay, as a 402 or OpenAI's ``insufficient_quota``: the next
    model at once, this one cooled for ``cooldown.max_seconds``."""
    body = {"error": {**LITELLM_BUDGET["error"], "code": str(status)}}
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(status, json.dumps(body),
                                                                                 headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert cooling > 1  # the breaker's own rest is 1 s here (router_for); max_seconds 5
