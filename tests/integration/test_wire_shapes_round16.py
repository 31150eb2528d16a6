"""A sixteenth outside-in pass (faults35): shapes real servers and relays send that the fakes never did, each rebuilt
from the report where its users met it (cited per test), replayed verbatim (``Fault.raw``) through the router.

- text deltas that carry all the text so far (relays over Gemini's cumulative frames; Volcengine Ark's one-off
  replay of the whole text): the answer was passed on said twice or more; now once;
- Anthropic-compatible relays' ``"text": null`` in a ``text_delta`` (and ``thinking: null``): the whole answer was
  malformed_response; now read as the empty piece it is, as a left-out ``text`` was;
- Gemini's parallel calls each whole in a chunk of its own, with no ``index`` and no id (or all under index 0): all
  but the last call were lost, the answer passed on as right; now each call.

Each failed on the code before this pass, but the guards (named so), which held already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, SSE, call, chunk, fn
from tests.integration.test_wire_shapes_outside_in import MESSAGE_START, MESSAGE_STOP, block, delta, message_delta, stop
from tests.integration.test_wire_shapes_round3 import outcomes
from tests.integration.test_wire_shapes_round9 import _routed

from modelyard.types import ChatRequest, Message, ToolDefinition

PLAIN = ChatRequest(messages=[Message("user", "Weather in Paris?")])
TOOLS = ChatRequest(messages=[Message("user", "Weather in Paris and Rome?")], tools=[ToolDefinition("get_weather")])
ANSWER = "It is sunny in Paris today, 24 degrees."


def _texts(*pieces: str) -> list[str]:
    """The stream of an answer whose text deltas are ``pieces``, then its finish and ``[DONE]``."""
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces),
            chunk({}, "stop"), DONE]


async def _answer(servers: dict[str, Any], tmp_path: Path, kind: str, request: ChatRequest,  # noqa: F811
                  *events: str) -> Any:
    servers[kind].push(Fault.raw(200, *events, headers=SSE))
    [routed] = await _routed(kind, servers, tmp_path, request)
    return routed


# -- text deltas that carry the text so far ----------------------------------------------------------------------------

#: each delta the whole text so far: a relay over Gemini's streamGenerateContent, whose frames carry "the full
#: accumulated candidate text" (tashfeenahmed/freellmapi#1007), or a chat server of its own (swuecho/chat#687:
#: "Contains the full message content, not incremental")
SNAPSHOTS = ["It is", "It is sunny", "It is sunny in Paris", "It is sunny in Paris today,", ANSWER]


@pytest.mark.parametrize("events", [SNAPSHOTS, SNAPSHOTS[:1] + SNAPSHOTS[-1:], [*SNAPSHOTS, ANSWER]],
                         ids=["each-a-snapshot", "two-snapshots", "last-sent-twice"])
async def test_deltas_that_each_carry_the_text_so_far_are_read_once(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path, events: list[str]) -> None:
    """Read as pieces, the client got "It isIt is sunnyIt is sunny in Paris…" and the log stored it so. The third
    delta that extends the second says the deltas are snapshots; a stream that ends at its second is read so too."""
    routed = await _answer(servers, tmp_path, "openai", PLAIN, *_texts(*events))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == ANSWER


async def test_a_delta_that_replays_the_whole_text_is_not_said_twice(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """Volcengine Ark's DeepSeek (openclaw/openclaw#136262): ordinary pieces, then now and then one delta "exactly
    equal to the full text accumulated so far at that point", then pieces again. The answer was said twice over."""
    routed = await _answer(servers, tmp_path, "openai", PLAIN,
                           *_texts("It is sunny", " in Paris", " today,", "It is sunny in Paris today,",
                                   " 24 degrees."))
    assert routed.response.text == ANSWER


@pytest.mark.parametrize("pieces", [
    ["\n", "\n", "Here is the answer."],  # posit-dev/chatlas#435: two equal pieces that start an answer
    ["ha", "haha", "! Sunny."],           # the second extends the first; the third says they were pieces
    ["no", "no", "no", "."],              # a short word said again and again
    ["Sunny", ". ", "Sunny", ". "],       # a phrase said twice, shorter than a replay
], ids=["two-newlines", "extends-then-not", "repeated-word", "short-repeat"])
async def test_guard_pieces_that_repeat_earlier_text_are_kept(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                              pieces: list[str]) -> None:
    """Guard: a model that repeats itself is passed on as it wrote."""
    routed = await _answer(servers, tmp_path, "openai", PLAIN, *_texts(*pieces))
    assert routed.response.text == "".join(pieces)


# -- Anthropic: "text": null ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["text", "thinking"])
async def test_anthropic_null_piece_is_no_text(servers: dict[str, Any], tmp_path: Path, where: str) -> None:  # noqa
    """Anthropic-compatible relays leave ``text`` out of a text_delta with nothing in it, or send it null
    (MoonshotAI/kimi-code#2924, #3207). Left out, it was read as ""; null failed the whole answer: "text arrived as
    NoneType", malformed_response, the model never asked again. The SDKs type it a string; null says nothing."""
    thinking = [block(0, {"type": "thinking", "thinking": ""}),
                delta(0, {"type": "thinking_delta", "thinking": "Paris in June." if where == "text" else None}),
                stop(0)]
    routed = await _answer(servers, tmp_path, "anthropic", PLAIN, MESSAGE_START, *thinking,
                           block(1, {"type": "text", "text": ""}), delta(1, {"type": "text_delta", "text": "Sunny."}),
                           delta(1, {"type": "text_delta", where: None} if where == "text"
                                 else {"type": "text_delta", "text": ""}), stop(1),
                           message_delta("end_turn"), MESSAGE_STOP)
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."


# -- Gemini's parallel calls, each whole in its own chunk --------------------------------------------------------------

def _whole(city: str, **fields: Any) -> dict[str, Any]:
    return {**fields, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}


@pytest.mark.parametrize("fields", [{"id": ""}, {}, {"index": 0, "id": ""}], ids=["empty-id", "no-id", "index-0"])
async def test_parallel_calls_each_whole_in_its_own_chunk_are_each_a_call(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path,
                                                                          fields: dict[str, Any]) -> None:
    """Gemini sends each parallel call whole in a chunk of its own, without ``index`` (brainlid/langchain#620), its id
    empty through some relays (openai-agents-python#1959), or every call under ``index`` 0 (su-kaka/gcli2api#406,
    hermes-agent#62940). Read as one call's pieces, the arguments joined ``{"city": "Paris"}{"city": "Rome"}`` and
    only the last object was kept: Paris' call lost, the answer passed on as right. Gemini ends it on "stop"."""
    routed = await _answer(servers, tmp_path, "openai", TOOLS,
                           chunk({"role": "assistant", "tool_calls": [_whole("Paris", **fields)]}),
                           chunk({"role": "assistant", "tool_calls": [_whole("Rome", **fields)]}),
                           chunk({"role": "assistant", "tool_calls": [_whole("Oslo", **fields)]}),
                           chunk({}, "stop"), DONE)
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Oslo"})]


async def test_parallel_calls_with_object_arguments_each_in_its_own_chunk(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """The same with ``arguments`` as an object (a few relays): the second was "partly text, partly an object",
    malformed_response."""
    def whole(city: str) -> str:
        return chunk({"tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                       "arguments": {"city": city}}}]})
    routed = await _answer(servers, tmp_path, "openai", TOOLS, whole("Paris"), whole("Rome"), chunk({}, "tool_calls"),
                           DONE)
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]


@pytest.mark.parametrize("pieces", [
    ['{"city": "Paris"}', '{"city": "Paris"}'],  # Mistral's and GLM-style resend of the whole (opencode#17339)
    ["{}", '{"city": "Paris"}'],                 # Gemini's placeholder, then the arguments (autogen#7549)
    ['{"city": "Pa', 'ris"}'],                   # the spec's pieces, the name said again (vllm#18412)
], ids=["resent-whole", "placeholder", "pieces"])
async def test_guard_one_call_said_in_named_pieces_stays_one_call(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                                  pieces: list[str]) -> None:
    """Guard: the pieces of one call, each naming its function, stay one call."""
    routed = await _answer(servers, tmp_path, "openai", TOOLS,
                           *(call(index=0, id="call_1", type="function", function=fn("get_weather", p))
                             for p in pieces), chunk({}, "tool_calls"), DONE)
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", {"city": "Paris"})]


# -- TGI: the stop sequence echoed, its usage right after ----------------------------------------------------------

def _tgi(content: str | None, finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    """One event of TGI's chat stream (router ChatState::push: the token's chunk, and with ``include_usage`` a
    usage chunk, ``choices: []``, after the token that carries the finish reason)."""
    choices = [] if content is None else [{"index": 0, "delta": {"role": "assistant", "content": content},
                                           "logprobs": None, "finish_reason": finish}]
    return "data: " + json.dumps({"object": "chat.completion.chunk", "id": "", "created": 1714640000,
                                  "model": "teknium/OpenHermes-2.5-Mistral-7B",
                                  "system_fingerprint": "2.0.2-sha-6073ece", "choices": choices,
                                  "usage": usage}) + "\n\n"


@pytest.mark.parametrize("apart", [False, True], ids=["same-write", "next-write"])
async def test_tgis_usage_after_the_stop_sequence_it_echoed_is_read(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path, apart: bool) -> None:
    """TGI's OpenAI-compatible stream writes the stop sequence it stopped at (huggingface/text-generation-inference
    #1724: "The OpenAI Compatible API Still Outputs Stop Sequence"), then at once its usage chunk. The router closes
    a stream whose text reaches a client's stop sequence (router/stop_watch.py) — here right at the sequence's chunk,
    before the usage the server had already sent: the tokens were logged as estimates (the pieces that came, the
    prompt's characters). The server stopped there itself (it was sent the sequence): its usage is read now, within
    a short bound; the text after the sequence is still never passed on."""
    request = ChatRequest(messages=[Message("user", "Say number 1 - 10")], stop=["7"])
    tail = [_tgi(" 7", "stop_sequence"), _tgi(None, usage={"prompt_tokens": 31, "completion_tokens": 17,
                                                           "total_tokens": 48}), DONE]
    events = [_tgi(t) for t in ("1", ",", " 2", ",", " 3", ",", " 4", ",", " 5", ",", " 6", ",")]
    servers["openai"].push(Fault.raw(200, *events, *(tail if apart else ["".join(tail)]), headers=SSE,
                                     interval=0.01 if apart else 0.0))
    [routed] = await _routed("openai", servers, tmp_path, request)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "1, 2, 3, 4, 5, 6, 7"  # the gateway cuts the sequence off (gateway/stops.py)
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_guard_a_server_that_goes_on_past_a_stop_it_was_sent_is_closed_soon(servers: dict[str, Any],  # noqa
                                                                                  tmp_path: Path) -> None:
    """Guard: a server that was sent the sequence and writes on past it (it ignored ``stop``), the connection held
    open: the stream is closed within the short bound, nothing after the sequence is taken, the tokens estimated."""
    request = ChatRequest(messages=[Message("user", "Say number 1 - 10")], stop=["7"])
    events = [_tgi(t) for t in ("1", ",", " 7", ",", " 8", ",", " 9")]
    servers["openai"].push(Fault.raw(200, *events, headers=SSE, end="hang", interval=0.01))
    [routed] = await _routed("openai", servers, tmp_path, request)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "1, 7"
    assert (routed.record.attempts[0].duration_ms or 0) < 1000
