"""A seventh outside-in pass (hunt7): what the six before left. Each shape is the server's own, taken from its source
or an issue thread where its users met it (cited per test), replayed verbatim (``Fault.raw``) or sent by the fakes
(tests/fakes/anthropic.py checks the signatures of thinking blocks sent back, as the API does).

- the server's word that asking again helps (``x-should-retry: true``) on a 4xx, and 409, which the official SDKs
  retry (``_base_client._should_retry``);
- an Ollama cloud model's spent allowance through Ollama's OpenAI-compatible /v1 (and its sign-in refusal there);
- a prompt past the model's context said inside a 200 (LM Studio's SSE error event, SGLang's error chunk);
- Claude's signed thinking in a tool loop, kept and sent back as the API requires.

Each failed on the code before this pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic as anthropic_sdk
import pydantic
import pytest
from tests.fakes import AnthropicServer, Fault, OpenAIServer
from tests.fakes.chat import DEFAULT_REPLY, DEFAULT_THINKING
from tests.helpers import make_config
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling

from modelyard.ledger import LogWriter
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolCall, ToolDefinition

SSE = {"content-type": "text/event-stream"}


# -- the server's word on asking again, on a 4xx ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(("status", "headers"), [
    (400, {"x-should-retry": "true"}),  # the SDKs ask again on "true" before any status rule
    (413, {"x-should-retry": "true"}),
    (404, {"x-should-retry": "true"}),  # was model_missing: the model cooled for cooldown.max_seconds
    (409, {}),  # OpenAI's lock timeout: the SDKs retry 408, 409, 429 and 5xx without a header
], ids=["400_should_retry", "413_should_retry", "404_should_retry", "409"])
async def test_a_4xx_the_server_says_to_ask_again_is_asked_again(kind: str, status: int, headers: dict[str, str],
                                                                 servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """The OpenAI and Anthropic SDKs (``_base_client._should_retry``) ask again when the response says
    ``x-should-retry: true``, whatever its status, and on a 409 without it. modelyard read "false" (round 6) but not
    "true": such a 400 or 409 was a bad_request — never asked again, the next model at once, and a chain that ended on
    it told the client its request was wrong. Now a server error: asked again after the backoff, and answered."""
    routed, _ = await route_cooling(kind, servers, tmp_path, Fault.status(status, headers=headers))
    assert outcomes(routed) == [("primary", "retry", "server_error"), ("primary", "ok", None)]
    assert routed.response.text or routed.response.tool_calls


async def test_words_that_decide_the_reason_outrank_the_header(servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """An account that cannot pay stays one whatever the header says (asking again cannot mend it)."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.status(
        429, error_type="insufficient_quota", headers={"x-should-retry": "true"}))
    assert outcomes(routed)[0] == ("primary", "fallback", "auth_error") and cooling > 4


async def test_a_400_without_the_header_is_still_the_requests_fault(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.status(400))
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)] and cooling == 0


# -- an Ollama cloud model through Ollama's /v1 -----------------------------------------------------------------------

#: a model pulled as a cloud stub (``ollama pull gpt-oss:120b-cloud``) is answered by the native handler, whose
#: api.StatusError (Status "429 Too Many Requests", api/client.go) the /v1 middleware wraps: middleware/openai.go's
#: writeError → openai.NewError, type "api_error" for any status but 400 and 404 (ollama at fb30760)
STUB_SPENT = {"error": {"message": "429 Too Many Requests: you've reached your weekly usage limit, please wait or "
                                   "upgrade to continue", "type": "api_error", "param": None, "code": None}}
#: a ``:cloud`` name is passed through to ollama.com's own /v1 (server/cloud_proxy.go); its words as users quote them
#: (hermes-agent#65563, #68832), in Ollama's plain error shape
PASSED_SPENT = {"error": "you (someone) have reached your session usage limit, upgrade for higher limits: "
                         "https://ollama.com/upgrade (ref: 12c52684-d98f-4e31-8e00-15a25c05d561)"}


@pytest.mark.parametrize("body", [STUB_SPENT, PASSED_SPENT], ids=["cloud_stub", "cloud_passthrough"])
async def test_ollama_cloud_allowance_spent_through_v1_cools_the_model(body: dict[str, Any],
                                                                      servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """On /api/chat a spent allowance cooled the model (round 6); through Ollama's /v1 — the OpenAI-compatible
    provider — the same 429 was a rate limit without a wait: asked again after a backoff, and every few seconds after,
    refused each time for the hour, the session or the week. It cools as an account that cannot pay does."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(429, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert "usage limit" in (routed.record.attempts[0].detail or "") and cooling > 4


async def test_ollama_cloud_allowance_spent_through_its_messages_api_cools_the_model(servers: dict[str, Any],  # noqa
                                                                                   tmp_path: Path) -> None:
    """The same allowance through Ollama's Anthropic-compatible /v1/messages (Claude Code pointed at Ollama: "API
    Error: Request rejected (429) · you (…) have reached your session usage limit"): middleware/anthropic.go's
    writeError wraps Ollama's words as a 429 ``rate_limit_error`` (anthropic/anthropic.go NewError). It was a rate
    limit without a wait on the Anthropic provider too; it cools the model."""
    said = "you (someone) have reached your session usage limit, upgrade for higher limits: https://ollama.com/upgrade"
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": said}, "request_id": "req_4f1c2b"}
    routed, cooling = await route_cooling("anthropic", servers, tmp_path,
                                          Fault.raw(429, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)] and cooling > 4


async def test_ollama_cloud_model_not_signed_in_through_v1_says_what_to_do(servers: dict[str, Any],  # noqa: F811
                                                                           tmp_path: Path) -> None:
    """Ollama's /v1 for a cloud model on a server not signed in: 401 ``{"error": "unauthorized", "signin_url": …}``
    (server/cloud_proxy.go, writeCloudUnauthorized). "HTTP 401: unauthorized" from a server that takes no key; the
    detail now says to run ``ollama signin``, as on /api/chat, and does not repeat the URL (it carries the host's
    key)."""
    url = "https://ollama.com/connect?name=box&key=c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUtleQ"
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        401, json.dumps({"error": "unauthorized", "signin_url": url}), headers=JSON))
    first = routed.record.attempts[0]
    assert (first.reason, first.outcome) == ("auth_error", "fallback") and cooling > 4
    assert "ollama signin" in (first.detail or "") and "c3NoLWVk" not in (first.detail or "")


# -- a prompt past the context, said inside a 200 ---------------------------------------------------------------------

LMSTUDIO_WORDS = ("Input does not fit in context length. The input has 31430 tokens, but the context length only "
                  "supports 30000 tokens.")
SGLANG_WORDS = "The input (400013 tokens) is longer than the model's context length (262144 tokens)."


@pytest.mark.parametrize("chunks", [
    # LM Studio 0.4.21: HTTP 200, text/event-stream, one SSE error event (goose#11318, lmstudio-bug-tracker#2322)
    ["event: error\ndata: " + json.dumps({"error": {"message": LMSTUDIO_WORDS}, "message": LMSTUDIO_WORDS}) + "\n\n"],
    # SGLang: the tokenizer's ValueError caught inside the stream, after the 200 (serving_chat.py generate_stream_resp:
    # create_streaming_error_response, then [DONE])
    ["data: " + json.dumps({"error": {"object": "error", "message": SGLANG_WORDS, "type": "BadRequestError",
                                       "param": None, "code": 400}}) + "\n\n", "data: [DONE]\n\n"],
    # LM Studio before 0.4: its llama.cpp engine's words as an error object in the stream (dyad#925)
    ['data: {"error": "Trying to keep the first 14538 tokens when context the overflows. However, the model is loaded '
     'with context length of only 2048 tokens, which is not enough."}\n\n'],
], ids=["lmstudio_error_event", "sglang_error_chunk", "lmstudio_old_words"])
async def test_a_prompt_past_the_context_said_inside_a_200_is_the_requests(chunks: list[str],
                                                                          servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """A server that says the prompt does not fit after it sent 200 was read as a stream error: asked again (the same
    prompt, refused again) and counted against a model that is well, until it cooled for every request. Said as a
    400 it was a bad_request; said so inside the stream it now is one too: the next model at once (one with a larger
    context may take it), nothing counted."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(200, *chunks, headers=SSE))
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "does not fit the model's context" in (routed.record.attempts[0].detail or "") and cooling == 0


#: TGI's /v1 stream (huggingface_hub's tests/test_inference_client.py replays it: a first chunk, then the refusal)
TGI_ROOM = ("Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 6 `inputs` tokens and "
            "4091 `max_new_tokens`")
TGI_FIRST = {"object": "chat.completion.chunk", "id": "", "created": 1721737661, "model": "",
             "system_fingerprint": "2.1.2-dev0-sha-5fca30e",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Both"}, "logprobs": None,
                          "finish_reason": None}]}


@pytest.mark.parametrize("fault", [
    Fault.raw(200, "data: " + json.dumps(TGI_FIRST) + "\n\n",
              "data: " + json.dumps({"error": TGI_ROOM, "error_type": "validation"}) + "\n\n", headers=SSE),
    Fault.raw(422, json.dumps({"error": TGI_ROOM, "error_type": "validation"}), headers=JSON),
], ids=["in_a_200_stream", "as_a_422"])
async def test_tgis_context_room_refusal_is_clamped(fault: Fault, servers: dict[str, Any],  # noqa: F811
                                                    tmp_path: Path) -> None:
    """TGI refuses a prompt plus ``max_new_tokens`` past the context in its own words, as a 422 or — streaming —
    inside the 200 with ``error_type: "validation"``. The stream's was a stream_error (asked again for the same
    refusal, counted against the model); neither was read for the room it states (4096 - 6), so the request fell
    back instead of being asked once more within it, as vLLM's and SGLang's are."""
    servers["openai"].push(fault)
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Say hello")], max_tokens=4091))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "retry", "bad_request"), ("primary", "ok", None)]
    sent = [r.json.get("max_tokens") for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [4091, 4090]


async def test_an_error_event_that_says_nothing_of_the_context_is_still_asked_again(servers: dict[str, Any],  # noqa
                                                                                   tmp_path: Path) -> None:
    event = 'event: error\ndata: {"error": {"message": "the model crashed"}}\n\n'
    routed, _ = await route_cooling("openai", servers, tmp_path, Fault.raw(200, event, headers=SSE))
    assert outcomes(routed)[0] == ("primary", "retry", "stream_error")


# -- OpenAI-compatible servers' streams the fakes did not send ------------------------------------------------------

async def test_thinking_under_reasoning_between_keep_alive_pings(tmp_path: Path) -> None:
    """Outside-in coverage (passes on the old code too; the fake did not send these before): Ollama's /v1 and newer
    vLLM stream the thinking as ``delta.reasoning``, llama_cpp.server (sse-starlette) writes ``: ping - <time>``
    comments between events. The thinking is kept apart from the answer, the pings skipped."""
    with OpenAIServer(models=["local"], emit_reasoning=True, reasoning_field="reasoning", ping=True) as server:
        config = make_config({"local": {"provider": "openai", "model": "local", "endpoint": server.url}},
                             {"agent": {"primary": "local"}})
        writer = LogWriter(tmp_path / "log.db", local_models=["local"])
        router = Router(config, sink=writer.submit)
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Say hello")]))
        await router.aclose()
        writer.close()
    assert outcomes(routed) == [("local", "ok", None)]
    assert (routed.response.text, routed.response.thinking) == (DEFAULT_REPLY, DEFAULT_THINKING)


# -- Claude's signed thinking in a tool loop --------------------------------------------------------------------------

KEY = "sk-ant-round7-abcdefghijklmnopqrstuv"
WEATHER = ToolDefinition("get_weather", "The weather in a city",
                         {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
def claude(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ROUND7_ANTHROPIC_KEY", KEY)
    with AnthropicServer(api_key=KEY, redacted_thinking=True, tool_arguments={"city": "Paris"}) as server:
        yield server


def claude_router(claude: AnthropicServer, log: Path) -> tuple[Router, LogWriter]:
    config = make_config(
        {"claude": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": claude.url,
                    "api_key_env": "ROUND7_ANTHROPIC_KEY"}},
        {"agent": {"primary": "claude"}},
        defaults={"retries": {"attempts": 1, "backoff": 0.01}})
    writer = LogWriter(log)
    return Router(config, sink=writer.submit), writer


async def tool_loop(claude: AnthropicServer, tmp_path: Path, between: Any = None) -> tuple[Any, Any]:
    """One tool turn, then the turn after its result, through one router, as an agent loop carries it (a Message keeps
    no signature). ``between`` runs between the two."""
    router, writer = claude_router(claude, tmp_path / "log.db")
    ask = [Message("user", "Weather in Paris?")]
    first = await router.complete("agent", ChatRequest(messages=ask, tools=[WEATHER], thinking=True))
    (call,) = first.response.tool_calls
    if between is not None:
        between()
    history = [*ask, Message("assistant", first.response.text, tool_calls=[call], thinking=first.response.thinking),
               Message("tool", "sunny, 24 C", tool_call_id=call.id, name="get_weather")]
    second = await router.complete("agent", ChatRequest(messages=history, tools=[WEATHER], thinking=True))
    await router.aclose()
    writer.close()
    return first, second


async def test_claudes_signed_thinking_goes_back_with_its_tool_turn(claude: AnthropicServer, tmp_path: Path) -> None:
    """With thinking on, the API wants a tool loop's last assistant turn back with its thinking blocks, signed and
    unmodified, redacted ones included ("preserving thinking blocks", extended-thinking docs): without them, 400 "a
    final `assistant` message must start with a thinking block" (OpenRouterTeam/ai-sdk-provider#162). modelyard kept
    no signature: every turn after a tool result was refused and asked again without thinking — the model reasoned
    about no tool result at all. The provider now keeps the blocks it was given for each tool turn and puts them back:
    one request per turn, thinking on both, the blocks exactly as the API gave them."""
    first, second = await tool_loop(claude, tmp_path)
    assert outcomes(first) == outcomes(second) == [("claude", "ok", None)]
    assert second.response.text == DEFAULT_REPLY and second.response.thinking == DEFAULT_THINKING
    sent = [r.json for r in claude.requests]
    assert ["thinking" in body for body in sent] == [True, True]
    turn = sent[1]["messages"][1]
    assert [b["type"] for b in turn["content"]] == ["thinking", "redacted_thinking", "tool_use"]
    assert turn["content"][0]["thinking"] == DEFAULT_THINKING
    assert claude.signed[turn["content"][0]["signature"]] == DEFAULT_THINKING
    assert turn["content"][1]["data"] in claude.redacted
    for message in sent[1]["messages"]:  # each turn as the official SDK's types describe it
        pydantic.TypeAdapter(anthropic_sdk.types.MessageParam).validate_python(message)


async def test_a_signature_the_api_no_longer_takes_is_dropped_for_the_turn(claude: AnthropicServer,
                                                                         tmp_path: Path) -> None:
    """A kept signature the API refuses (400 "messages.1.content.0: Invalid `signature` in `thinking` block":
    claude-code#10627; it fails when a block differs in any way or another model made it, anthropic-sdk-python#1598)
    would have been a bad_request on every such turn: the turn is asked again at once without the blocks and without
    thinking, as for a turn whose blocks were never kept."""
    first, second = await tool_loop(claude, tmp_path, between=claude.signed.clear)
    assert outcomes(second) == [("claude", "ok", None)] and second.response.text == DEFAULT_REPLY
    last = claude.requests[-1].json
    assert "thinking" not in last and len(claude.requests) == 3
    assert all(b.get("type") not in ("thinking", "redacted_thinking")
               for m in last["messages"] if isinstance(m["content"], list) for b in m["content"])


async def test_a_turn_another_model_made_still_goes_without_thinking(claude: AnthropicServer, tmp_path: Path) -> None:
    """A tool turn whose blocks this provider never saw (another model made it) is asked again without thinking, as
    before (round 6): no block is invented."""
    router, writer = claude_router(claude, tmp_path / "log.db")
    history = [Message("user", "Weather in Paris?"),
               Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, "call_elsewhere")]),
               Message("tool", "sunny", tool_call_id="call_elsewhere", name="get_weather")]
    routed = await router.complete("agent", ChatRequest(messages=history, tools=[WEATHER], thinking=True))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("claude", "ok", None)] and not routed.response.thinking
    assert ["thinking" in r.json for r in claude.requests] == [True, False]


async def test_signed_thinking_of_a_whole_message_goes_back_too(claude: AnthropicServer, tmp_path: Path) -> None:
    """A server or proxy that answers the whole message as JSON where a stream was asked for (round 3) carries its
    signed blocks in ``content``: kept and sent back the same way."""
    whole = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
             "content": [{"type": "thinking", "thinking": "Paris in June.", "signature": "EqQBsig_whole"},
                         {"type": "redacted_thinking", "data": "EmwKAhgBredacted_whole"},
                         {"type": "tool_use", "id": "toolu_whole", "name": "get_weather", "input": {"city": "Paris"}}],
             "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 7}}
    claude.signed["EqQBsig_whole"] = "Paris in June."
    claude.redacted.add("EmwKAhgBredacted_whole")
    claude.push(Fault.raw(200, json.dumps(whole), headers=JSON))
    first, second = await tool_loop(claude, tmp_path)
    assert outcomes(second) == [("claude", "ok", None)] and second.response.thinking == DEFAULT_THINKING
    turn = claude.requests[1].json["messages"][1]["content"]
    assert turn[:2] == whole["content"][:2] and len(claude.requests) == 2


# -- Gemini 3's thought signatures through its OpenAI-compatible endpoint ---------------------------------------------

#: a tool call as Gemini's OpenAI-compatible endpoint streams it: its thought signature in ``extra_content``
#: (ai.google.dev/gemini-api/docs/thought-signatures, "OpenAI compatibility"; ruby_llm#588)
GEMINI_SIGNATURE = {"google": {"thought_signature": "CiQBcsjafEqwP5vqn0gAVW2Fn3x0hfJLHHs3sXNdWLhrSHmeBYQ"}}
GEMINI_CALL = {"id": "function-call-7205461562", "type": "function", "index": 0, "extra_content": GEMINI_SIGNATURE,
               "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
#: Gemini 3's refusal of a tool turn whose calls lost their signatures (discuss.ai.google.dev/t/109823)
GEMINI_UNSIGNED = [{"error": {"code": 400, "message": (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
    "call `default_api:get_weather` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-"
    "signatures for more details."), "status": "INVALID_ARGUMENT"}}]


async def test_geminis_thought_signature_goes_back_with_its_call(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Gemini 3 signs each tool call and refuses the next turn when the signature does not come back with it (400
    "Function call is missing a thought_signature in functionCall parts"): a Message keeps no such field, so every
    tool loop's second turn on Gemini 3 was a bad_request. The provider keeps what the server attached to each call
    and sends it back with that call."""
    chunk = {"id": "x", "object": "chat.completion.chunk", "model": "gemini-3-pro-preview",
             "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [GEMINI_CALL]},
                          "finish_reason": "tool_calls"}]}
    servers["openai"].push(Fault.raw(200, "data: " + json.dumps(chunk) + "\n\n", "data: [DONE]\n\n", headers=SSE))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    ask = [Message("user", "Weather in Paris?")]
    first = await router.complete("agent", ChatRequest(messages=ask, tools=[WEATHER]))
    (call,) = first.response.tool_calls
    history = [*ask, Message("assistant", "", tool_calls=[call]),
               Message("tool", "sunny", tool_call_id=call.id, name="get_weather")]
    second = await router.complete("agent", ChatRequest(messages=history, tools=[WEATHER]))
    await router.aclose()
    writer.close()
    assert outcomes(second) == [("primary", "ok", None)]
    sent = servers["openai"].requests[-1].json["messages"][1]["tool_calls"][0]
    assert (sent["id"], sent["extra_content"]) == (GEMINI_CALL["id"], GEMINI_SIGNATURE)


async def test_a_call_gemini_did_not_make_gets_googles_stand_in_signature(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """A tool turn another model made carries no signature: Gemini 3 refuses it, and Google documents the stand-in
    "skip_thought_signature_validator" for such histories. The turn is asked again at once with it on the first
    call, and answered."""
    servers["openai"].push(Fault.raw(400, json.dumps(GEMINI_UNSIGNED), headers=JSON))
    history = [Message("user", "Weather in Paris?"),
               Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, "toolu_elsewhere")]),
               Message("tool", "sunny", tool_call_id="toolu_elsewhere", name="get_weather")]
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", ChatRequest(messages=history, tools=[WEATHER]))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    sent = servers["openai"].requests[-1].json["messages"][1]["tool_calls"][0]
    assert sent["extra_content"] == {"google": {"thought_signature": "skip_thought_signature_validator"}}
