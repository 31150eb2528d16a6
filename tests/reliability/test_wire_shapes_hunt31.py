"""Provider wire shapes, hunt 31 (providers31): what the thirteenth hunt left, and shapes real servers and relays send
that no fake had sent — each rebuilt from the report where it was met (cited per test), replayed through the router.

- an Anthropic stream whose ``message_start`` carries no ``usage`` (an adapter that waits for its upstream's first
  usage): the whole answer was lost as malformed_response — the provider kept four counts where its reader wants five;
- Anthropic usage sent with or after ``message_stop`` (Bedrock's invocation metrics on it; relays that write the
  usage as a ``message_delta`` after it): the tokens were estimated; now read when nothing before gave usage, within
  the same short bound as OpenAI's usage after ``[DONE]``;
- an OpenAI-compatible answer whose one choice has ``index`` 1 (Gemini through LiteLLM): skipped as another of ``n``
  choices, the answer read as nothing (unusable_reply); now the answer;
- a JSON answer cut right after an inner bracket where its own text balances the count: malformed_response; now a
  dropped connection, asked again;
- a page under 200 without a final line ending where Ollama's JSON lines were expected: connection_dropped (asked
  again for the same page); now malformed_response, as the OpenAI-compatible provider says;
- an Anthropic answer without any usage: logged as 0 tokens in and out; now estimated, as OpenAI-compatible ones are;
- the server's error in words where its events are JSON (``data: error: …``; an Anthropic ``event: error`` whose data
  is text): malformed_response; now the server's error (stream_error, asked again), its words kept;
- tool-call pieces with neither id nor name under an index no call has (Nebius, Cerebras; DeepSeek behind a relay): a
  call without a name, malformed_response; now the latest call's pieces;
- an Ollama chat answered in ``/api/generate``'s lines (an Ollama-emulating proxy): unusable_reply; now its text; Open
  WebUI's Ollama proxy refusing in ``detail``: the row said only "HTTP 400"; now its words;
- a 429 whose wait is only in its words ("Please try again in 4.289s", "retry after 4 seconds"): the model cooled for
  the breaker's second; now for the wait said;
- properties: a bookkeeping field (usage, ids, times) of any shape never costs the answer; a body cut anywhere before
  its finish is a dropped connection.

Each failed on the code before this work, but the guards (named so), which held already.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, NDJSON, SSE, call, chunk, data, event, fn
from tests.integration.test_wire_shapes_outside_in import MESSAGE_STOP, block, delta
from tests.integration.test_wire_shapes_round3 import outcomes, route
from tests.integration.test_wire_shapes_round11 import cooled_until

# -- Anthropic: message_start without usage ----------------------------------------------------------------------------

#: message_start as an adapter writes it before its upstream's first usage (Antigravity-Manager#2028: "The message_start
#: event is missing the usage field when usageMetadata is not yet available from the Gemini backend")
BARE_START = event("message_start", {"type": "message_start", "message": {
    "id": "msg_unknown", "type": "message", "role": "assistant", "content": [], "model": "", "stop_reason": None,
    "stop_sequence": None}})
TEXT = block(0, {"type": "text", "text": ""}) + delta(0, {"type": "text_delta", "text": "Sunny."}) + event(
    "content_block_stop", {"type": "content_block_stop", "index": 0})


def _stop_delta(usage: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if usage is not None:
        body["usage"] = usage
    return event("message_delta", body)


@pytest.mark.parametrize("usage", [{"input_tokens": 31, "output_tokens": 17}, None], ids=["usage-at-delta", "none"])
async def test_anthropic_stream_whose_message_start_has_no_usage_is_answered(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path,
                                                                             usage: dict[str, Any] | None) -> None:
    """Antigravity-Manager#2028 (its proxy's Anthropic stream over Gemini): ``message_start`` without ``usage``, the
    real counts on ``message_delta`` (or none at all). The provider began with four counts where its reader wants five
    (the one-hour cache writes): every such answer failed at its end, malformed_response, and was asked of the next
    model. Now the primary's answer, with the counts message_delta gave (or estimated)."""
    routed = await route("anthropic", servers, tmp_path,
                         Fault.raw(200, BARE_START, TEXT, _stop_delta(usage), MESSAGE_STOP, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."
    if usage is not None:
        assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


# -- Anthropic: usage with or after message_stop -----------------------------------------------------------------------

START = event("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
    "usage": {"input_tokens": 0, "output_tokens": 0}}})


@pytest.mark.parametrize("apart", [False, True], ids=["same-write", "next-write"])
async def test_anthropic_usage_sent_after_message_stop_is_read(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                               apart: bool) -> None:
    """A relay that turns an OpenAI-compatible upstream into Anthropic's stream ends on the upstream's finish reason
    — ``message_delta`` without usage, ``message_stop`` — and writes the usage as a ``message_delta`` when the
    upstream's usage chunk comes, after it (lobehub#18558's review: "emits message_stop, then an illegal post-terminal
    usage delta"; such upstreams "commonly place usage after stop"). modelyard stopped at message_stop: the counts
    estimated. Now read — in the write that brought message_stop, or the next (``apart``: 10 ms later) — within
    :data:`modelyard.providers.http.AFTER_END`."""
    late = event("message_delta", {"type": "message_delta", "delta": {},
                                   "usage": {"input_tokens": 31, "output_tokens": 17}})
    tail = (MESSAGE_STOP, late) if apart else (MESSAGE_STOP + late,)
    routed = await route("anthropic", servers, tmp_path, Fault.raw(200, START, TEXT, _stop_delta(None), *tail,
                                                                   headers=SSE, interval=0.01 if apart else 0.0))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_anthropic_usage_on_message_stop_is_read(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Amazon Bedrock's Anthropic stream ends with its counts on ``message_stop``, as
    ``amazon-bedrock-invocationMetrics`` (``inputTokenCount``, ``outputTokenCount``: langchain-ai/langchain-aws#164,
    langchain#14120); a relay that passes Bedrock's events on without the per-event usage leaves only those. They were
    not read: the counts estimated."""
    stop = event("message_stop", {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 31, "outputTokenCount": 17, "invocationLatency": 812, "firstByteLatency": 301}})
    routed = await route("anthropic", servers, tmp_path,
                         Fault.raw(200, START, TEXT, _stop_delta(None), stop, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_guard_anthropic_stream_held_open_after_message_stop_ends_the_answer(servers: dict[str, Any],  # noqa: F811
                                                                                   tmp_path: Path) -> None:
    """Guard (held already: it stopped at message_stop): no usage anywhere and the body held open after message_stop —
    the wait for late usage is bounded, the answer comes (well within the test's idle bound of 2 s)."""
    routed = await route("anthropic", servers, tmp_path,
                         Fault.raw(200, START, TEXT, _stop_delta(None), MESSAGE_STOP, headers=SSE, end="hang"))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.attempts[0].duration_ms or 0) < 1000


# -- OpenAI-compatible: the one choice numbered 1 ----------------------------------------------------------------------

#: Gemini's answer through LiteLLM's proxy, ``"stream": false`` (litellm#3678: "AI Studio (Gemini API) returns invalid
#: `1` index instead of `0`"; "Only the non-streaming version has this bug")
GEMINI_INDEX_1 = json.dumps({
    "id": "chatcmpl-a0f17391-17da-480c-b5a5-c6e1e5f97fde", "created": 1715874011,
    "model": "gemini/gemini-1.5-pro-latest",
    "object": "chat.completion", "system_fingerprint": None,
    "choices": [{"finish_reason": "stop", "index": 1, "message": {"content": "Sunny.", "role": "assistant"}}],
    "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48}})


def _numbered(index: int, delta: dict[str, Any], finish: str | None = None) -> str:
    return data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local",
                 "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_the_one_choice_numbered_1_is_the_answer(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                       streamed: bool) -> None:
    """A choice whose ``index`` is not 0 was skipped as another of ``n`` choices, even when it was the only one: the
    whole answer read as nothing — unusable_reply, a good answer asked of the next model. The one choice is the answer
    whatever its number (litellm#3678's body, and the same numbering streamed)."""
    fault = (Fault.raw(200, _numbered(1, {"role": "assistant", "content": "Sunny."}), _numbered(1, {}, "stop"), DONE,
                       headers=SSE) if streamed else Fault.raw(200, GEMINI_INDEX_1, headers=JSON))
    routed = await route("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."
    if not streamed:
        assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_guard_n_choices_numbered_from_0_still_answer_choice_0(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Guard: with several choices, choice 0 is the answer — also when choice 1's chunk comes first in a chunk of
    its own after choice 0 began."""
    fault = Fault.raw(200, _numbered(0, {"role": "assistant", "content": "Sun"}), _numbered(1, {"content": "Rain"}),
                      _numbered(0, {"content": "ny."}), _numbered(1, {}, "stop"), _numbered(0, {}, "stop"), DONE,
                      headers=SSE)
    routed = await route("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."


# -- a JSON answer cut where its own text balances the brackets --------------------------------------------------------

WHOLE = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "  return x;\n}"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2}})


async def test_a_json_answer_cut_where_its_text_balances_the_brackets_is_a_dropped_connection(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The thirteenth hunt made a JSON answer (a server that ignores ``stream: true``) cut right after an inner ``}``
    a dropped connection by counting brackets; one whose text holds an unpaired ``}`` (the end of a code block)
    balances the count at that cut and was still malformed_response — never asked again, the model counted broken
    (README Status, left then). A body of a chat answer's size is now parsed: connection_dropped, asked again."""
    cut = WHOLE[:WHOLE.index('"stop"}') + len('"stop"}')]
    assert cut.count("{") == cut.count("}") and cut != WHOLE
    routed = await route("openai", servers, tmp_path, Fault.raw(200, cut, headers=JSON))
    assert outcomes(routed)[0] == ("primary", "retry", "connection_dropped"), routed.record.attempts[0].detail
    assert outcomes(routed)[-1][1] == "ok"


async def test_guard_the_whole_answer_whose_text_has_an_unpaired_bracket_is_read(servers: dict[str, Any],  # noqa: F811
                                                                                tmp_path: Path) -> None:
    """Guard: the same answer whole is read."""
    routed = await route("openai", servers, tmp_path, Fault.raw(200, WHOLE, headers=JSON))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "  return x;\n}"


# -- Ollama: a page under 200 without a line ending at its end ---------------------------------------------------------

@pytest.mark.parametrize("page", [
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    "<!doctype html><html lang=\"en\"><head><title>Open WebUI</title></head><body></body></html>"],
    ids=["proxy-page", "web-ui"])
async def test_ollama_page_under_200_without_a_final_newline_is_malformed(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path, page: str) -> None:
    """An HTML page where Ollama's JSON lines were expected — a proxy's error page sent as 200, a web UI answering on
    the port Ollama was expected on (Open WebUI's page, one line, no line ending) — was read as a JSON line cut short
    by the body's end: connection_dropped, asked again for the same page. The OpenAI-compatible provider already says
    malformed_response for it (fourth hunt, "an HTML page under 200"); Ollama's now the same, and the next model
    answers without the retry."""
    routed = await route("ollama", servers, tmp_path, Fault.raw(200, page, headers={"content-type": "text/html"}))
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)], \
        routed.record.attempts[0].detail


# -- Anthropic: no usage anywhere --------------------------------------------------------------------------------------

@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole-message"])
async def test_anthropic_answer_without_any_usage_is_estimated(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                               whole: bool) -> None:
    """An adapter that never gives usage — no ``usage`` in message_start (Antigravity-Manager#2028) nor on
    message_delta, or a whole message without it — was logged as 0 tokens in and 0 out: a billed model's cost, its
    spend cap and the all-cloud comparison saw nothing. Now estimated as the OpenAI-compatible provider estimates a
    server that sends none: the prompt from its characters, one token per text delta."""
    body = (Fault.raw(200, json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                       "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn"}),
                      headers=JSON) if whole
            else Fault.raw(200, BARE_START, TEXT, _stop_delta(None), MESSAGE_STOP, headers=SSE))
    routed = await route("anthropic", servers, tmp_path, body)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert routed.record.tokens_in > 0 and routed.record.tokens_out == 1


async def test_guard_anthropic_counts_said_are_not_estimated(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Guard: counts the stream gives are kept as given."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, START.replace('"input_tokens": 0', '"input_tokens": 31'), TEXT,
        _stop_delta({"output_tokens": 17}), MESSAGE_STOP, headers=SSE))
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


# -- the server's error in words, not JSON -----------------------------------------------------------------------------

#: lucasjinreal/Crane#121: Crane's server "wrote EngineResponse::Error as a bare \"error: <message>\" data line while
#: every other event in the same streams used .json_data(...)"; OpenCode failed on it with 'Unexpected identifier
#: "error"'
SAID_ERROR = "data: error: CUDA out of memory. Tried to allocate 20.00 MiB\n\n"
#: Envoy's words for an upstream that reset (its local reply), sent by a relay as an SSE error event's data
ENVOY_RESET = ("event: error\ndata: upstream connect error or disconnect/reset before headers. reset reason: "
               "overflow\n\n")


@pytest.mark.parametrize(("kind", "fault"), [
    ("openai", Fault.raw(200, chunk({"content": "Sun"}), SAID_ERROR, headers=SSE)),
    ("openai", Fault.raw(200, chunk({"content": "Sun"}), SAID_ERROR, DONE, headers=SSE)),
    ("anthropic", Fault.raw(200, START, TEXT, SAID_ERROR, headers=SSE)),
    ("anthropic", Fault.raw(200, START, TEXT, ENVOY_RESET, headers=SSE)),
], ids=["openai-error-line", "openai-error-line-then-done", "anthropic-error-line", "anthropic-error-event-in-words"])
async def test_an_error_said_in_words_mid_stream_is_the_servers_error(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path, kind: str, fault: Fault) -> None:
    """A server that writes its failure as words where its events are JSON — ``data: error: <message>`` (Crane#121),
    or an ``event: error`` whose data is text (the OpenAI-compatible provider read that already; Anthropic's did not)
    — was malformed_response: never asked again, the model counted broken, the words lost in a parser's complaint.
    Now the server's error with its words: a stream_error, asked again, then the next model."""
    routed = await route(kind, servers, tmp_path, fault)
    assert outcomes(routed)[0] == ("primary", "retry", "stream_error"), routed.record.attempts[0].detail
    assert "CUDA out of memory" in (routed.record.attempts[0].detail or "") or "upstream connect error" in (
        routed.record.attempts[0].detail or "")


# -- tool-call pieces under indexes no call has ------------------------------------------------------------------------

PARIS, ROME = '{"city": "Paris"}', '{"city": "Rome"}'
TOOL_PIECES: dict[str, tuple[list[str], list[tuple[str, dict[str, str], str]]]] = {
    # dirac-run/dirac#215: "Certain OpenAI-compatible streaming endpoints (such as Nebius or Cerebras) stream tool-call
    # argument deltas where subsequent chunks carry an incremented or arbitrary `index` without repeating the tool
    # call `id` or `name`"
    "later-pieces-under-the-next-index": (
        [call(index=0, id="call_a", type="function", function=fn("get_weather", '{"city":')),
         call(index=1, function=fn(None, ' "Paris"}'))], [("get_weather", {"city": "Paris"}, "call_a")]),
    "later-pieces-under-arbitrary-indexes": (
        [call(index=0, id="call_a", type="function", function=fn("get_weather", '{"ci')),
         call(index=3, function=fn(None, 'ty": "Pa')), call(index=7, function=fn(None, 'ris"}'))],
        [("get_weather", {"city": "Paris"}, "call_a")]),
    # agno-agi/agno#8880 (deepseek-v4-flash behind an OpenAI-compatible endpoint): "the head delta of a *second* tool
    # call arrived with `index=0`, colliding with the first call, while its argument tail arrived with `index=1`"
    "second-head-under-the-first-index": (
        [call(index=0, id="call_a", type="function", function=fn("get_weather", PARIS)),
         call(index=0, id="call_b", type="function", function=fn("get_weather", "")),
         call(index=1, function=fn(None, ROME))],
        [("get_weather", {"city": "Paris"}, "call_a"), ("get_weather", {"city": "Rome"}, "call_b")]),
}


@pytest.mark.parametrize("case", list(TOOL_PIECES))
async def test_tool_call_pieces_under_an_index_no_call_has_continue_the_latest_call(
        servers: dict[str, Any], tmp_path: Path, case: str) -> None:  # noqa: F811
    """A piece with neither id nor name under an index no call has was made a call of its own, which has no name:
    malformed_response, the model's calls lost and the whole answer asked of the next model. By the spec a call's
    first fragment names it, so such a piece is the latest call's."""
    pieces, expected = TOOL_PIECES[case]
    routed = await route("openai", servers, tmp_path, Fault.raw(200, *pieces, chunk({}, "tool_calls"), DONE,
                                                                headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == expected


async def test_guard_spec_calls_under_their_own_indexes_stay_apart(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Guard: two calls as the spec streams them (each head with its id and name under its own index, then its
    pieces under the same index) stay two calls."""
    pieces = [call(index=0, id="call_a", type="function", function=fn("get_weather", "")),
              call(index=0, function=fn(None, PARIS)),
              call(index=1, id="call_b", type="function", function=fn("get_weather", "")),
              call(index=1, function=fn(None, ROME))]
    routed = await route("openai", servers, tmp_path, Fault.raw(200, *pieces, chunk({}, "tool_calls"), DONE,
                                                                headers=SSE))
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [
        ("get_weather", {"city": "Paris"}, "call_a"), ("get_weather", {"city": "Rome"}, "call_b")]


# -- Ollama-emulating proxies ------------------------------------------------------------------------------------------

def _generate_line(text: str, done: bool = False, **extra: Any) -> str:
    """A line as eyalrot/ollama_openai's proxy (image 0.7.0) answers ``/api/chat`` (its #33: "the response to a
    streaming chat request should include a field called `message`, not `response`")."""
    return json.dumps({"model": "default", "created_at": "2026-01-28T19:06:32.495145Z", "response": text,
                       "done": done, **extra}) + "\n"


async def test_an_ollama_chat_answered_in_generate_lines_is_read(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """A chat answered in ``/api/generate``'s shape (``response`` for ``message.content``) was read as lines of
    nothing: the answer refused as unusable_reply and asked of the next model. Now its text."""
    routed = await route("ollama", servers, tmp_path, Fault.raw(
        200, _generate_line("The"), _generate_line(" sky"), _generate_line(" is blue."),
        _generate_line("", True, done_reason="stop", prompt_eval_count=9, eval_count=4), headers=NDJSON))
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "The sky is blue." and routed.record.tokens_out == 4


async def test_open_webuis_ollama_proxy_refusal_keeps_its_words(servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """Open WebUI's Ollama proxy refuses in FastAPI's ``detail`` (open-webui#14955: ``{"detail": "Ollama: 400,
    message='Bad Request', url='http://host.docker.internal:11434/api/chat'"}``): the row said "HTTP 400" and nothing
    else. Now the proxy's words (the reason, from the status, as before)."""
    routed = await route("ollama", servers, tmp_path, Fault.raw(
        400, '{"detail":"Ollama: 400, message=\'Bad Request\', url=\'http://host.docker.internal:11434/api/chat\'"}',
        headers=JSON))
    assert outcomes(routed)[0] == ("primary", "fallback", "bad_request")
    assert "message='Bad Request'" in (routed.record.attempts[0].detail or "")


# -- a rate limit's wait said only in its words ------------------------------------------------------------------------

@pytest.mark.parametrize(("words", "wait"), [
    # Groq's, through a relay that keeps the body but not the headers (Aider-AI/aider#3265 quotes it through LiteLLM)
    ("Rate limit reached for model `gemma2-9b-it` in organization `org_1` service tier `on_demand` on tokens per "
     "minute (TPM): Limit 15000, Used 11972, Requested 4351. Please try again in 4.289s. Visit "
     "https://console.groq.com/docs/rate-limits for more information.", 4.289),
    # OpenAI's, a Go duration
    ("Rate limit reached for gpt-4o-mini in organization org-1 on requests per min (RPM): Limit 3, Used 3, "
     "Requested 1. Please try again in 0m4s.", 4.0),
    # Azure OpenAI's
    ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token "
     "rate limit of your current OpenAI S0 pricing tier. Please retry after 4 seconds.", 4.0),
], ids=["groq", "openai-duration", "azure"])
async def test_a_rate_limits_wait_in_its_words_is_honoured(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                           words: str, wait: float) -> None:
    """A 429 whose wait is only in its words (the relay in between dropped ``retry-after`` and the rate-limit headers)
    cooled the model for the breaker's second: asked again, and refused, at once. Now it rests for the wait said
    (checked as round 11 checks a relayed header: the cooldown's end against the clock around the request)."""
    body = json.dumps({"error": {"message": words, "type": "tokens", "code": "rate_limit_exceeded"}})
    routed, before, until, after = await cooled_until(servers, tmp_path, Fault.raw(429, body, headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert before + wait <= until <= after + wait  # the breaker's own rest here is 1 s (router_for)


# -- properties: bookkeeping of any shape, a cut anywhere --------------------------------------------------------------

#: values a server's bookkeeping fields were met holding, or could: null, text, numbers past range, containers
ODD_VALUES: list[Any] = [None, "", "7", -1, 1.5, 1e308, 10**30, True, [], {}, [None], {"a": None}, "\ud800"]


def _openai_events() -> list[str]:
    def chunk_of(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764554400, "model": "local",
                "system_fingerprint": "fp_1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    events = [chunk_of({"role": "assistant", "content": ""}), chunk_of({"content": "Sunny."}),
              chunk_of({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {
                  "name": "get_weather", "arguments": PARIS}}]}), chunk_of({}, "tool_calls"),
              {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764554400, "model": "local",
               "choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48,
                                        "prompt_tokens_details": {"cached_tokens": 0}}}]
    return [f"data: {json.dumps(e)}\n\n" for e in events] + [DONE]


def _anthropic_events() -> list[str]:
    return [START.replace('"input_tokens": 0, "output_tokens": 0', '"input_tokens": 31, "output_tokens": 1'), TEXT,
            block(1, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
            delta(1, {"type": "input_json_delta", "partial_json": PARIS}),
            event("content_block_stop", {"type": "content_block_stop", "index": 1}),
            event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                    "usage": {"output_tokens": 17}}), MESSAGE_STOP]


def _ollama_events() -> list[str]:
    line = {"model": "qwen3.5:latest", "created_at": "2026-12-01T06:00:00Z"}
    return [json.dumps(e) + "\n" for e in (
        {**line, "message": {"role": "assistant", "content": "Sunny."}, "done": False},
        {**line, "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, "done": False},
        {**line, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "total_duration": 900, "load_duration": 10, "prompt_eval_count": 31, "prompt_eval_duration": 100,
         "eval_count": 17, "eval_duration": 700})]


#: per wire format: its whole answer's events, the content-type, and the bookkeeping fields (paths in an event's JSON)
#: whose value says nothing of the answer
WIRES: dict[str, tuple[Any, dict[str, str], list[tuple[int, tuple[Any, ...]]]]] = {
    "openai": (_openai_events, SSE, [(0, ("id",)), (1, ("created",)), (1, ("model",)), (1, ("system_fingerprint",)),
                                     (4, ("usage",)), (4, ("usage", "prompt_tokens")),
                                     (4, ("usage", "prompt_tokens_details"))]),
    "anthropic": (_anthropic_events, SSE, [(0, ("message", "usage")), (0, ("message", "id")),
                                           (0, ("message", "usage", "input_tokens")), (0, ("message", "model")),
                                           (5, ("usage",)), (5, ("usage", "output_tokens"))]),
    "ollama": (_ollama_events, NDJSON, [(0, ("created_at",)), (2, ("total_duration",)), (2, ("eval_count",)),
                                        (2, ("eval_duration",)), (2, ("prompt_eval_count",)), (2, ("model",))]),
}


def _with(event_text: str, path: tuple[Any, ...], value: Any) -> str:
    """``event_text`` (an SSE event or a JSON line) with the value at ``path`` in its JSON replaced."""
    head, _, rest = event_text.rpartition("data: ") if "data: " in event_text else ("", "", event_text)
    data = json.loads(rest)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return head + ("data: " if "data: " in event_text else "") + json.dumps(data) + "\n" + (
        "\n" if "data: " in event_text else "")


@pytest.mark.parametrize("kind", list(WIRES))
@pytest.mark.parametrize("seed", range(6))
async def test_bookkeeping_of_any_shape_never_loses_the_answer(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                               kind: str, seed: int) -> None:
    """Property (a guard for most draws; the Anthropic usage draws failed before this hunt: see the first test): a
    field that counts or labels the answer — usage, ids, model names, times, durations — holding any value (null,
    text, a number past range, a container, a lone surrogate) never costs the answer: the text and the call come, as
    the server sent them. Seeded, so a failure names its draw."""
    events_of, headers, fields = WIRES[kind]
    rng = random.Random(f"{kind}-{seed}")
    events = events_of()
    index, path = rng.choice(fields)
    events[index] = _with(events[index], path, rng.choice(ODD_VALUES))
    routed = await route(kind, servers, tmp_path, Fault.raw(200, *events, headers=headers))
    assert outcomes(routed) == [("primary", "ok", None)], (index, path, routed.record.attempts[0].detail)
    assert routed.response.text == "Sunny."
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("kind", list(WIRES))
@pytest.mark.parametrize("seed", range(6))
async def test_guard_a_body_cut_anywhere_before_its_end_is_a_dropped_connection(
        servers: dict[str, Any], tmp_path: Path, kind: str, seed: int) -> None:  # noqa: F811
    """Guard (held already): the whole answer cut at any byte before its finish — the body then ends cleanly, as a
    proxy's own timeout ends it — is a dropped connection, asked again: never malformed_response, which is not."""
    events_of, headers, _ = WIRES[kind]
    text = "".join(events_of())
    end = text.index("message_delta") if kind == "anthropic" else text.index(
        '"finish_reason": "tool_calls"') if kind == "openai" else text.index('"done": true')
    at = random.Random(f"{kind}-{seed}").randrange(1, end)
    routed = await route(kind, servers, tmp_path, Fault.raw(200, text[:at], headers=headers))
    assert outcomes(routed)[0] == ("primary", "retry", "connection_dropped"), (at, routed.record.attempts[0].detail)


@pytest.mark.parametrize(("words", "seconds"), [
    ("Rate limit reached. Please try again in 2 hours.", 7200.0),
    ("Daily quota used up; retry after 1 hour", 3600.0),
    ("Too many requests, try again in 500 ms", 0.5),
    ("Please retry after 6 seconds.", 6.0),        # guard: Azure's words, read before
    ("Please try again in 1m30s.", 90.0),          # guard: a Go duration, read before
])
def test_a_wait_said_in_hours_or_ms_words_is_read_in_its_unit(words: str, seconds: float) -> None:
    """review31: "try again in 2 hours" was read as 2 seconds (no hour unit), and "in 500 ms" as 500 seconds (the
    unit, spaced off, was not read)."""
    from modelyard.providers.http import wait_in_words

    assert wait_in_words(words) == pytest.approx(seconds)
