"""A tenth outside-in pass (hunt10): what the ninth left open, then shapes real servers send that the fakes never did.
Each is the server's own, taken from a spec, its source or an issue thread where its users met it (cited per test),
replayed verbatim (``Fault.raw``) through the router.

- an SSE event that names its type and has no data (NestJS's ``event: error`` without a message): its type ends at
  the blank line, as the WHATWG spec says, and a stream that ends after it is the server's error, not a break;
- ``finish_reason: "tool_calls"`` (Anthropic's ``stop_reason: "tool_use"``) with no tool call: the call the model
  announced is lost, said so, instead of its preamble passed on as the answer;
- a finish reason on every chunk (LiteLLM relaying Gemini) and a pause in the answer: read to its end, not cut at the
  pause and passed on as whole.

Each failed on the code before this pass; the guards marked so held already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.helpers import make_config
from tests.integration.test_fault_shapes import KEY, _reset, primary, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, NDJSON, SSE, call, chunk, data, event, fn, message, ndjson
from tests.integration.test_wire_shapes_round3 import outcomes
from tests.integration.test_wire_shapes_round4 import ANTHROPIC_EVENTS
from tests.integration.test_wire_shapes_round9 import _routed, _rows

from modelyard.ledger import LogWriter
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolDefinition

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])
TOOLS = ChatRequest(messages=[Message("user", "Read the brief and sum it up")], tools=[ToolDefinition("read_file")])
USAGE = 'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}\n\n'


# -- an event that names its type and has no data --------------------------------------------------------------------

#: NestJS's SSE writer leaves the data line out when the error has no message (sse-stream.js: ``data +=
#: message.data ? toDataString(message.data) : ''``), so ``event: error\nid: 1\n\n`` is a frame such a server sends
#: (bayes-platform#639)
NEST_ERROR = "event: error\nid: 1\n\n"


async def test_an_event_type_ends_with_its_event_even_without_data(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """The WHATWG SSE spec ends an event at its blank line and resets the event type there, whether or not it had
    data (an event with no data is not dispatched). The OpenAI-compatible reader kept ``error`` as the type of every
    event after a data-less ``event: error``: the good answer that followed was raised as the server's error
    (stream_error, asked again, then the next model)."""
    servers["openai"].push(Fault.raw(200, NEST_ERROR, chunk({"role": "assistant", "content": "Sunny."}),
                                     chunk({}, "stop"), DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_that_ends_after_a_data_less_error_is_the_servers_error(kind: str,
                                                                              servers: dict[str, Any],  # noqa: F811
                                                                              tmp_path: Path) -> None:
    """The same frame, then the end of the body (a NestJS stream ends at its error): the server said it failed. It
    was connection_dropped, "stream ended without [DONE]" (Anthropic: "before message_stop"), a break of the
    connection nobody saw; now a stream_error that says what came. Asked again, then the next model, as before."""
    if kind == "openai":
        body = [chunk({"role": "assistant", "content": "Sun"}), NEST_ERROR]
    else:
        body = [*ANTHROPIC_EVENTS[:3], NEST_ERROR]  # message_start, a text block begun, a delta
    fault = Fault.raw(200, *body, headers=SSE)
    servers[kind].push(fault, fault)
    [routed] = await _routed(kind, servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "retry", "stream_error"), ("primary", "fallback", "stream_error"),
                                ("backup", "ok", None)]
    assert "error event without data" in routed.record.attempts[0].detail
    assert routed.response.text == "backup answer" and _rows(tmp_path) == 1


async def test_a_crlf_split_between_two_reads_ends_one_line(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """CRLF line endings (allowed by SSE; .NET and Windows servers write them), the CR ending one read and the LF
    opening the next: one line ending, as the spec reads it. It was two, a blank line between an event's type and
    its data, which now ends the event: the error event's data (a flat object, no "error" key) was read as a chunk
    of the answer and skipped, the error lost."""
    servers["openai"].push(Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}), "event: error\r",
                                     '\ndata: {"message": "quota exceeded", "code": 429}\r\n\r\n',
                                     headers=SSE, interval=0.05))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed)[0] == ("primary", "retry", "rate_limited")


async def test_a_keep_alive_comment_passed_on_as_data_is_skipped(servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """A proxy that re-sends OpenRouter's keep-alive comment as data, ``data: : OPENROUTER PROCESSING``, whenever
    the upstream takes a moment for its first token (mnfst/llm-gateway#2053). It was held as the start of a JSON
    document, joined to the next event, and the answer refused as malformed (no retry: the next model)."""
    servers["openai"].push(Fault.raw(200, "data: : OPENROUTER PROCESSING\n\n", "data: : OPENROUTER PROCESSING\n\n",
                                     chunk({"role": "assistant", "content": "Sunny."}), chunk({}, "stop"), DONE,
                                     headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


@pytest.mark.parametrize("last", [
    {"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"},
    {"index": 0, "delta": {}, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"},
], ids=["message_only", "empty_delta_and_message"])
async def test_a_whole_message_snapshot_after_the_deltas_is_not_said_again(last: dict[str, Any],
                                                                          servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """Some OpenAI-style streams end with a chunk shaped like a whole message, ``message.content`` the answer so far,
    in place of a last delta (hermes-browser-extension#11). Read as the answer's next piece, it said the answer twice:
    "Sunny.Sunny." passed on and logged as ok."""
    servers["openai"].push(Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}), chunk({"content": "ny."}),
                                     data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [last]}),
                                     DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.response.stop_reason == "stop"


# -- a tool call announced and never sent ----------------------------------------------------------------------------

#: GitHub Copilot relaying Claude: a preamble, ``finish_reason: "tool_calls"``, no tool call (hermes-agent#75926, where
#: the preamble ended 75% of an agent's runs as their answer)
PREAMBLE = "I'll read the brief file first."


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_tool_call_announced_and_never_sent_is_not_the_answer(kind: str, servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """A finish reason of a tool call with no call, on a request that offered tools: vLLM's with ``tool_choice:
    "required"`` and no call parsed (vllm#53255), Copilot's relay of Claude (hermes-agent#75926), an Anthropic proxy's
    ``stop_reason: "tool_use"`` (mastra#14187). The preamble passed as the whole answer, finish "tool_calls" in the
    log; the agent's turn ended on "I'll read the brief file first." Now an unusable reply: the next model answers."""
    if kind == "openai":
        body = [chunk({"role": "assistant", "content": PREAMBLE}), chunk({}, "tool_calls"), USAGE, DONE]
    else:
        body = [*ANTHROPIC_EVENTS[:2],
                event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": PREAMBLE}}),
                ANTHROPIC_EVENTS[3],
                event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                        "usage": {"output_tokens": 8}}), ANTHROPIC_EVENTS[-1]]
    servers[kind].push(Fault.raw(200, *body, headers=SSE))
    [routed] = await _routed(kind, servers, tmp_path, TOOLS)
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)]
    assert "sent no tool call" in routed.record.attempts[0].detail


@pytest.mark.parametrize(("request_", "text"), [
    # no tools offered: no call could have come; the text is the answer
    (PLAIN, "Hello there."),
    # a call written as text, which vLLM without a tool parser leaves in the content (vllm#53255): the gateway and the
    # agent loop read such text (a model allowed tool_text_fallback has it made a call)
    (TOOLS, '<tool_call>\n{"name": "read_file", "arguments": {"path": "brief.md"}}\n</tool_call>'),
], ids=["no_tools", "call_written_as_text"])
async def test_a_tool_finish_without_a_call_is_a_text_answer_where_text_is_all_it_can_be(
        request_: ChatRequest, text: str, servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The same finish reason where the text is the answer: it is passed on, its finish "stop" (it was "tool_calls",
    which a client reads as "run the calls", and there were none)."""
    pieces = [text[:12], text[12:]]  # a tag or a "name" split across deltas is still found
    servers["openai"].push(Fault.raw(200, chunk({"role": "assistant", "content": pieces[0]}),
                                     chunk({"content": pieces[1]}), chunk({}, "tool_calls"), USAGE, DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, request_)
    assert outcomes(routed)[0][0] == "primary"
    assert routed.response.text == text and routed.response.stop_reason == "stop"


async def test_a_tool_finish_with_its_call_is_still_a_call(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """Guard (held before): the usual tool answer, the call's fragments then ``finish_reason: "tool_calls"``."""
    servers["openai"].push(Fault.raw(200, call(index=0, id="call_1", function=fn("read_file", '{"path": "brief.md"}')),
                                     chunk({}, "tool_calls"), USAGE, DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed) == [("primary", "ok", None)]
    [made] = routed.response.tool_calls
    assert made.name == "read_file" and made.arguments == {"path": "brief.md"}


# -- a finish reason on every chunk, and a pause ---------------------------------------------------------------------

def _slow_router(servers: dict[str, Any], log: Path) -> tuple[Router, LogWriter]:  # noqa: F811
    """router_for's chain with an idle bound of 8 s: the pauses below (1.5 and 4.5 s) are well inside it."""
    config = make_config(
        {"primary": primary("openai", servers),
         "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 8, "idle": 8, "total": 40},
                  "retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1.5}},
    )
    writer = LogWriter(log, local_models=["backup"])
    return Router(config, sink=writer.submit), writer


@pytest.mark.parametrize(("learned", "pause"), [(False, 4.5), (True, 1.5)], ids=["first_answer", "after_learning"])
async def test_a_finish_reason_on_every_chunk_and_a_pause_lose_nothing(learned: bool, pause: float,
                                                                      servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """LiteLLM relaying Gemini puts ``finish_reason: "stop"`` on every chunk, each with its text (litellm#2195; on
    its tool-call fragments too, litellm#31634). The first such chunk counted as the end of the answer: what came
    after was waited for only half the idle bound (4 s here), or the 0.5 s grace of a server once found leaving its
    end marker out. A pause longer than that cut the answer after its first chunk, "Sun" passed on as whole and
    logged as ok — and the cut taught the 0.5 s grace, so each later answer was cut at its next pause of half a
    second. A finish reason on a chunk that carries the answer is no longer its end; the usual last chunk (nothing
    in it) and the usage chunk still are."""
    servers["openai"].push(Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}, "stop"),
                                     chunk({"content": "ny."}, "stop") + DONE, headers=SSE, interval=pause))
    router, writer = _slow_router(servers, tmp_path / "log.db")
    client = router.providers["primary"].client  # type: ignore[attr-defined]
    client.no_end_marker = learned
    try:
        routed = await router.complete("agent", PLAIN)
    finally:
        await router.aclose()
        writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."
    assert client.no_end_marker is learned  # nothing wrong learned from it


async def test_a_whole_answer_without_its_end_marker_is_still_kept_after_its_usage(servers: dict[str, Any],  # noqa
                                                                                  tmp_path: Path) -> None:
    """Guard for the change above: the finish reason on the answer's last text chunk (GLM-5 through vLLM puts it
    there, vllm-ascend#8327), the usage chunk, and no ``[DONE]`` on a connection kept open (bifrost#6784): the usage
    chunk ends the answer, which is kept within the grace."""
    fault = Fault.raw(200, chunk({"role": "assistant", "content": "Sunny."}, "stop") + USAGE,
                      *[": keep-alive\n\n"] * 40, headers=SSE, end="hang", interval=0.1)
    servers["openai"].push(fault)
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.record.tokens_out == 3


#: the finish reason on the last text chunk (vLLM before vllm#36944 put the last token and the finish reason in one
#: chunk, vllm#35705), no usage chunk, no ``[DONE]``, the connection held open with keep-alive comments (a proxy whose
#: upstream leaves ``[DONE]`` out, bifrost#6784; "providers emit a valid finish_reason chunk but do not close the
#: underlying SSE connection", claude-code-router#1271)
LAST_TEXT_FINISH = [chunk({"role": "assistant", "content": "Sun"}), chunk({"content": "ny."}, "stop")]


async def test_a_finish_reason_on_the_last_text_chunk_with_nothing_after_is_the_end(servers: dict[str, Any],  # noqa
                                                                                    tmp_path: Path) -> None:
    """Since a finish reason on a chunk that carries text stopped being the end (above), this answer was lost to the
    idle bound — a timeout, then the next model. Its earlier text came without a finish reason, so this server does
    not put one on every chunk (LiteLLM's Gemini does, from the first): the one on its last text chunk is the end, and
    the answer is kept after the grace."""
    servers["openai"].push(Fault.raw(200, *LAST_TEXT_FINISH, *[": keep-alive\n\n"] * 40, headers=SSE, end="hang",
                                     interval=0.1))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


async def test_text_after_a_finish_reason_within_the_grace_goes_on(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Guard for the change above: text that comes after that finish reason within the grace (half the idle bound,
    1 s here) was not the end; it is read on to [DONE]."""
    servers["openai"].push(Fault.raw(200, *LAST_TEXT_FINISH, chunk({"content": " Warm."}) + DONE, headers=SSE,
                                     interval=0.3))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny. Warm."


# -- tool-call ids that bend ------------------------------------------------------------------------------------------

WEATHER = ChatRequest(messages=[Message("user", "Weather in Paris and Rome?")], tools=[ToolDefinition("get_weather")])
TOOL_FINISH = [chunk({}, "tool_calls"), USAGE, DONE]


@pytest.mark.parametrize(("body", "want"), [
    # Poolside's endpoint: the call's id with its name, another id on every piece after (poolsideai/pool#9)
    ([call(index=0, id="call_first", type="function", function=fn("read_file", "")),
      call(index=0, id="call_other", function=fn(arguments='{"path": ')),
      call(index=0, id="call_other", function=fn(arguments='"brief.md"}'))],
     [("read_file", {"path": "brief.md"}, "call_first")]),
    # LocalAI: pieces of one call under further indexes, each with the call's id (LocalAI#9722)
    ([call(index=0, id="LipwoT0puK4t", type="function", function=fn("read_file", "")),
      call(index=1, id="LipwoT0puK4t", type="function", function=fn(arguments='{"path": "brief.md"}'))],
     [("read_file", {"path": "brief.md"}, "LipwoT0puK4t")]),
    # Guard (held before): lmdeploy's parallel calls, all index 0, each its own id and name
    ([call(index=0, id="call_a", function=fn("read_file", '{"path": "a.md"}')),
      call(index=0, id="call_b", function=fn("read_file", '{"path": "b.md"}'))],
     [("read_file", {"path": "a.md"}, "call_a"), ("read_file", {"path": "b.md"}, "call_b")]),
], ids=["poolside_id_changes", "localai_piece_under_new_index", "lmdeploy_all_index_0"])
async def test_a_streamed_call_whose_ids_bend_is_one_call(body: list[str], want: list[Any],
                                                          servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """Each was a call without a name — malformed_response, the model's call lost and the next model asked."""
    servers["openai"].push(Fault.raw(200, *body, *TOOL_FINISH, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, TOOLS)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == want


async def test_calls_that_share_one_id_stay_two_calls(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Xinference gives every call of an answer the same id (``call_<request id>``: xorbitsai/inference#4237), here
    in a whole (non-streamed) answer. The second entry was read as the first call's arguments again, and the first
    call (Paris) was dropped in silence; now two calls, the second id made unique so each result answers one call."""
    same = "call_f0de99f4-6fe1-4235-b4d9-1fcb010fa197"
    whole = {"id": "chatcmpl-1", "object": "chat.completion", "model": "local", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": same, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": same, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 20}}
    servers["openai"].push(Fault.raw(200, json.dumps(whole), headers=JSON))
    [routed] = await _routed("openai", servers, tmp_path, WEATHER)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.arguments, c.id) for c in routed.response.tool_calls] == [({"city": "Paris"}, same),
                                                                         ({"city": "Rome"}, same + "_2")]


# -- Ollama: an answer that says why it ended and never says "done" -------------------------------------------------

@pytest.mark.parametrize("last", [
    # Ollama's MLX engine: the last line says why, with no "done" (ollama-vscode#60, #61)
    {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done_reason": "stop",
     "prompt_eval_count": 9, "eval_count": 2},
    # or "done": false on it
    {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": False, "done_reason": "stop",
     "prompt_eval_count": 9, "eval_count": 2},
], ids=["no_done", "done_false"])
async def test_an_ollama_answer_that_ends_with_its_reason_and_no_done_is_whole(last: dict[str, Any],
                                                                              servers: dict[str, Any],  # noqa: F811
                                                                              tmp_path: Path) -> None:
    """The body ends after a line that says why the answer ended, without ``"done": true``. It was
    connection_dropped: asked again (the same end again), then the next model, the whole answer lost twice."""
    servers["ollama"].push(Fault.raw(200, ndjson(message("Sun")), ndjson(message("ny.")), ndjson(last),
                                     headers=NDJSON))
    [routed] = await _routed("ollama", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.record.tokens_out == 2


async def test_an_ollama_reason_mid_stream_is_not_the_end(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """Guard (held before): an Ollama-compatible server says why on its tool-call line, ``"done": false``, then
    sends its done line (llama-swappo#13): the call and the done line are both read."""
    servers["ollama"].push(Fault.raw(200, ndjson({
        "model": "qwen3.5:latest", "done": False, "done_reason": "tool_calls", "message": {
            "role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "read_file", "arguments": {"path": "brief.md"}}}]}}),
        ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 12}), headers=NDJSON))
    [routed] = await _routed("ollama", servers, tmp_path, TOOLS)
    assert outcomes(routed) == [("primary", "ok", None)]
    [made] = routed.response.tool_calls
    assert made.arguments == {"path": "brief.md"} and routed.record.tokens_out == 12


async def test_an_ollama_stream_cut_without_any_reason_is_still_dropped(servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Guard (held before): a body that ends with no line saying why is a connection that broke."""
    fault = Fault.raw(200, ndjson(message("Sun")), headers=NDJSON)
    servers["ollama"].push(fault, fault)
    [routed] = await _routed("ollama", servers, tmp_path, PLAIN)
    assert outcomes(routed)[0] == ("primary", "retry", "connection_dropped")


async def test_a_usage_object_that_counts_nothing_is_not_a_count(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """MiniMax puts ``"usage": {"total_tokens": 0, "total_characters": 0}`` on every chunk (MiniMax-M2.5#2), with no
    ``prompt_tokens`` or ``completion_tokens``. Read as a count, the answer was logged as 0 tokens in and 0 out (a
    billed model: $0); now, with no count from the server, the prompt is estimated and each streamed piece counted,
    as for a server that sends no usage at all."""
    zero = {"total_tokens": 0, "total_characters": 0}
    servers["openai"].push(Fault.raw(200, chunk({"role": "", "content": "Sun"}, usage=zero),
                                     chunk({"content": "ny."}, usage=zero), chunk({}, "stop", usage=zero), DONE,
                                     headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.record.tokens_out == 2 and routed.record.tokens_in > 0


# -- Groq: the model's JSON that does not hold ------------------------------------------------------------------------

#: Groq's refusal of JSON its model wrote that does not match the request's schema (amurex-backend#38)
JSON_FAILED = {"error": {
    "message": "Failed to generate JSON. Please adjust your prompt. See 'failed_generation' for more details.",
    "type": "invalid_request_error", "code": "json_validate_failed", "failed_generation": '{"city": Paris'}}
#: and of a tool call that does not parse, inside a stream (litellm#40566: Groq puts a string in error.code mid-stream)
CALL_FAILED = {"error": {
    "message": "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
    "type": "invalid_request_error", "code": "tool_use_failed", "failed_generation": "<function=read_file>"}}


@pytest.mark.parametrize("fault", [
    Fault.raw(400, json.dumps(JSON_FAILED), headers=JSON),
    Fault.raw(200, chunk({"role": "assistant", "content": ""}), "data: " + json.dumps(JSON_FAILED) + "\n\n", DONE,
              headers=SSE),
    # Guard (held before): the tool call's form of it, mid-stream
    Fault.raw(200, chunk({"role": "assistant", "content": ""}), "data: " + json.dumps(CALL_FAILED) + "\n\n", DONE,
              headers=SSE),
], ids=["json_400", "json_mid_stream", "tool_call_mid_stream"])
async def test_groqs_failed_generation_is_the_models_unusable_answer(fault: Fault, servers: dict[str, Any],  # noqa
                                                                     tmp_path: Path) -> None:
    """JSON the model wrote that does not hold to the schema: a 400 was a bad_request (a chain ending on it told the
    client its request was wrong, 400, do not retry), inside a stream a stream_error asked again of the same model.
    The model's unusable answer: the next model answers, the model's text stays out of the row."""
    servers["openai"].push(fault)
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)]
    detail = routed.record.attempts[0].detail
    assert "Please adjust your prompt" in detail and "Paris" not in detail and "<function" not in detail
