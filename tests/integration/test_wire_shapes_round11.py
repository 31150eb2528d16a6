"""An eleventh outside-in pass (prov11): what the tenth left open, then shapes real servers and gateways send that the
fakes never did. Each is the server's own, taken from its source or an issue thread where its users met it (cited per
test), replayed verbatim (``Fault.raw``) through the router.

- LM Studio's "No models loaded" as a 400 (0.4; a 404 in 0.3): a model not there, not the request's fault;
- token counts where the spec does not put them: Groq's ``x_groq.usage``, Moonshot's ``choices[0].usage``;
- Kimi's Anthropic-compatible stream, which omits ``content_block_stop``: its signed thinking kept for the tool turn.

Each failed on the code before this pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import AnthropicServer, Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_native_protocols_round7 import claude, tool_loop  # noqa: F401 - fixture
from tests.integration.test_wire_shapes import DONE, JSON, SSE, chunk, data, event
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round9 import _routed

from modelyard.types import ChatRequest, Message

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])


# -- LM Studio: no model loaded ---------------------------------------------------------------------------------------

#: LM Studio 0.4 with just-in-time loading off (or failing to load): its developer log shows the body it sends
#: (lmstudio-bug-tracker#1730, 0.4.8; #1217: "fails, no model loaded error, JIT not working"). 0.3.5 said the same words
#: as a 404 (lmstudio-ai/lms#107), already a missing model here
LMSTUDIO_NOT_LOADED = {"error": {
    "message": "No models loaded. Please load a model in the developer page or use the 'lms load' command.",
    "type": "invalid_request_error", "param": "model", "code": None}}


async def test_lm_studio_with_no_model_loaded_is_a_model_not_there(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """As a 400 it was a bad_request: the model never cooled, so every request was asked of it first and refused, for
    as long as nobody loaded it, and a chain that ended on it told the client its own request was wrong. Now a missing
    model, as LM Studio's 404 for it was: the next model at once, this one cooled, the detail saying what to do."""
    routed, cooling = await route_cooling("openai", servers, tmp_path,
                                          Fault.raw(400, json.dumps(LMSTUDIO_NOT_LOADED), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    assert cooling > 0
    assert "just-in-time" in (routed.record.attempts[0].detail or "")


# -- token counts off the spec's place --------------------------------------------------------------------------------

#: Groq's last chunk as its users print it (vercel/ai#1651; Portkey-AI/gateway#1072 shows it with stream_options on):
#: the finish reason, an empty delta, and the counts under ``x_groq`` — no top-level ``usage``
GROQ_LAST = chunk({}, "stop", x_groq={"id": "req_01hy8ppkajfqk987jv2vx88m9r", "usage": {
    "queue_time": 0.07535312, "prompt_tokens": 23, "prompt_time": 0.006, "completion_tokens": 19,
    "completion_time": 0.022, "total_tokens": 42, "total_time": 0.028}})
#: Moonshot's (Kimi's OpenAI-compatible API): the counts in the choice that ends the answer (earendil-works/pi#2017)
MOONSHOT_LAST = ('data: {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "kimi-k2.5", "choices": '
                 '[{"index": 0, "delta": {}, "finish_reason": "stop", "usage": {"prompt_tokens": 23, '
                 '"completion_tokens": 19, "total_tokens": 42}}]}\n\n')


@pytest.mark.parametrize("last", [GROQ_LAST, MOONSHOT_LAST], ids=["groq_x_groq", "moonshot_choice"])
async def test_token_counts_beside_the_last_chunk_are_read(last: str, servers: dict[str, Any],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """Read only at the top level, these counts were lost: the row logged an estimate (the prompt from its characters,
    one token per streamed piece — here 2 out, not 19), and a billed model's cost with it."""
    servers["openai"].push(Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}), chunk({"content": "ny."}),
                                     last, DONE, headers=SSE))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (23, 19)


# -- Kimi's Anthropic-compatible stream without content_block_stop ----------------------------------------------------

def _kimi_tool_turn() -> Fault:
    """A thinking tool turn as Kimi's Anthropic-compatible endpoints stream it: no ``content_block_stop`` between or
    after the blocks (xemantic/anthropic-sdk-kotlin#147, "Kimi via Moonshot's compat layer omit content_block_stop
    between blocks"); Kimi signs its thinking and takes it back (NousResearch/hermes-agent#67391)."""
    return Fault.raw(
        200,
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_kimi", "type": "message", "role": "assistant", "content": [], "model": "kimi-k2.6",
            "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "thinking_delta", "thinking": "Paris in June."}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "signature_delta", "signature": "EqQBsig_kimi"}}),
        event("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_kimi", "name": "get_weather", "input": {}}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 1,
                                      "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                "usage": {"output_tokens": 12}}),
        event("message_stop", {"type": "message_stop"}), headers=SSE)


async def test_signed_thinking_of_a_block_never_closed_goes_back_with_its_tool_turn(
        claude: AnthropicServer, tmp_path: Path) -> None:  # noqa: F811
    """The call was kept (round 3: a tool_use block never closed is whole once the message is), but the thinking
    block, taken only at its ``content_block_stop``, was dropped: with thinking on, the turn after the tool result went
    back without it — refused by a server that wants it ("must start with a thinking block") and asked again without
    thinking, the model's reasoning lost. Now the signed block goes back with its turn, one request each."""
    claude.signed["EqQBsig_kimi"] = "Paris in June."
    claude.push(_kimi_tool_turn())
    first, second = await tool_loop(claude, tmp_path)
    assert [c.id for c in first.response.tool_calls] == ["toolu_kimi"]
    assert outcomes(second) == [("claude", "ok", None)] and len(claude.requests) == 2
    turn = claude.requests[1].json["messages"][1]["content"]
    assert turn[0] == {"type": "thinking", "thinking": "Paris in June.", "signature": "EqQBsig_kimi"}
    assert "thinking" in claude.requests[1].json


# -- an empty balance said under a 429 --------------------------------------------------------------------------------

#: Z.ai's (GLM) OpenAI-compatible API, its balance spent (claude-code-router#1071, cursor2api#30), and its mainland
#: endpoint's same refusal in Chinese (continue#10296, QwenPaw#202)
ZAI_BALANCE = {"error": {"code": "1113", "message": "Insufficient balance or no resource package. Please recharge."}}
ZAI_BALANCE_CN = {"error": {"code": "1113", "message": "余额不足或无可用资源包,请充值。"}}
#: Moonshot's (Kimi's) account suspended for its balance, as relayed in opencode#24462
MOONSHOT_SUSPENDED = {"error": {
    "message": "Your account org-446a70bb2cc542e3960c0b7f05e4e0e1 <ak-f817m9q3k3wi11gjwbgi> is suspended due to "
               "insufficient balance, please recharge your account or check your plan and billing details",
    "type": "exceeded_current_quota_error"}}
#: OpenAI's insufficient_quota through LiteLLM's proxy, which wraps it in its own RateLimitError and loses the type
#: (litellm#5983's message; its proxy's error object: "type": null, "code": "429")
LITELLM_QUOTA = {"error": {
    "message": "litellm.RateLimitError: RateLimitError: OpenAIException - Error code: 429 - {'error': {'message': 'You "
               "exceeded your current quota, please check your plan and billing details.'}}",
    "type": None, "param": None, "code": "429"}}
#: Z.ai's Anthropic-compatible /api/anthropic/v1/messages (Claude Code's backend there): a rate_limit_error carrying the
#: code and the words in brackets (zai-org/feedback#789)
ZAI_ANTHROPIC = {"type": "error", "error": {
    "type": "rate_limit_error", "code": "1113",
    "message": "[1113][Insufficient balance or no resource package. Please recharge.][20260922232915e8288c66f9ff4aaa]"},
    "request_id": "20260922232915e8288c66f9ff4aaa"}


#: MiniMax's balance spent: through ModelScope's API-Inference a 429 of its own type (modelscope#1691), and on MiniMax's
#: Anthropic-compatible API (Claude Code's backend there) a *500* api_error (MiniMax-AI/MiniMax-M2#62)
MINIMAX_429 = {"error": {"http_code": "429", "message": "insufficient balance (1008)",
                         "type": "insufficient_balance_error"}, "request_id": "0614"}
MINIMAX_ANTHROPIC_500 = {"type": "error", "error": {"type": "api_error", "message": "insufficient balance (1008)"},
                         "request_id": "05997465cd2ee4bd50b24b216c911b75"}


@pytest.mark.parametrize(("kind", "status", "body"), [
    ("openai", 429, ZAI_BALANCE), ("openai", 429, ZAI_BALANCE_CN), ("openai", 429, MOONSHOT_SUSPENDED),
    ("openai", 429, LITELLM_QUOTA), ("openai", 429, MINIMAX_429), ("anthropic", 429, ZAI_ANTHROPIC),
    ("anthropic", 500, MINIMAX_ANTHROPIC_500),
], ids=["zai", "zai_cn", "moonshot", "litellm_openai_quota", "minimax_modelscope", "zai_anthropic",
        "minimax_anthropic_500"])
async def test_an_empty_balance_said_under_a_429_cools_as_an_account_that_cannot_pay(
        kind: str, status: int, body: dict[str, Any], servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """A 429 without a billing type was a rate limit (MiniMax's 500, a server error): asked again after the backoff
    for the same refusal, cooled for the breaker's seconds, then asked and refused on every request until someone
    paid. Now an account that cannot pay, as a 402 is: the next model at once, this one cooled for
    ``cooldown.max_seconds``."""
    routed, cooling = await route_cooling(kind, servers, tmp_path, Fault.raw(status, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert cooling > 1  # the breaker's own rest is 1 s here (router_for); max_seconds 5


# -- a wait relayed under another name --------------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["llm_provider-retry-after", "llm_provider-retry-after-ms"])
async def test_the_upstreams_wait_relayed_by_litellm_is_honoured(header: str, servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """LiteLLM's proxy passes the upstream's headers on renamed ``llm_provider-<name>`` (litellm_core_utils/
    core_helpers.py, process_response_headers: only OpenAI's six x-ratelimit-* keep their names); its 429 carries the
    upstream's ``retry-after: 7`` as ``llm_provider-retry-after: 7`` and no ``retry-after`` of its own (a LiteLLM
    gateway suite asserts exactly that: test_s02_chat_completions_upstream_429_keeps_retry_after_through_raw_httpx;
    cline, opencode and pi clients read the renamed header). The model cooled for the breaker's second, not the four
    asked for.

    The check reads the cooldown's recorded end (``open_until``, on the router's clock) against the clock read just
    before and just after the request: it must end 4 s after the refusal came, whatever the machine's load — the
    time left read after closing the router (``3 < cooling <= 4``) failed about half the time at load 7–10."""
    body = json.dumps({"error": {"message": "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit "
                                            "reached for requests", "type": None, "param": None, "code": "429"}})
    value = "4000" if header.endswith("-ms") else "4"
    routed, before, until, after = await cooled_until(servers, tmp_path, Fault.raw(429, body,
                                                                                 headers={**JSON, header: value}))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert before + 4 <= until <= after + 4  # the breaker's own rest here is 1 s (router_for)


async def cooled_until(servers: dict[str, Any], tmp_path: Path, fault: Fault) -> tuple[Any, float, float, float]:  # noqa: F811
    """The routed answer to ``fault`` from the OpenAI-compatible primary, with the router's clock just before the
    request, the primary's cooldown end, and the clock just after: a wait asked for is checked against those, not
    against the time left read later (which a loaded machine stretches)."""
    servers["openai"].push(fault)
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    try:
        health = router.pool.local("primary").health
        before = health.clock()
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Say hello")]))
        after = health.clock()
    finally:
        await router.aclose()
        writer.close()
    return routed, before, health.open_until, after


async def test_an_exhausted_limit_relayed_by_litellm_is_waited_out(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """Likewise a Claude upstream's ``anthropic-ratelimit-*`` pair (its remaining count 0, its reset an RFC 3339 time)
    arrives as ``llm_provider-anthropic-ratelimit-*``: the reset was not read and the model cooled for the breaker's
    second."""
    reset = (datetime.now(UTC) + timedelta(seconds=4)).isoformat().replace("+00:00", "Z")
    body = json.dumps({"error": {"message": "litellm.RateLimitError: AnthropicException - rate limit exceeded",
                                 "type": None, "param": None, "code": "429"}})
    _, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(429, body, headers={
        **JSON, "llm_provider-anthropic-ratelimit-requests-remaining": "0",
        "llm_provider-anthropic-ratelimit-requests-reset": reset}))
    assert 2 < cooling <= 4


# -- a prompt past the context, in vLLM's engine words, inside a 200 --------------------------------------------------

#: Xinference serving a model on its vLLM backend: its stream_results catches the engine's ValueError after the 200 and
#: yields ``{"error": str(ex)}`` (xinference/api/restful_api.py), the actor's address before vLLM's words
#: (xorbitsai/inference#3785), then ends the stream
XINFERENCE_TOO_LONG = ("[address=0.0.0.0:33279, pid=21723] The decoder prompt (length 21535) is longer than the "
                       "maximum model length of 16384. Make sure that `max_model_len` is no smaller than the number of "
                       "text tokens.")


async def test_a_prompt_past_vllms_maximum_model_length_said_in_a_stream_is_the_requests(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """It was a stream_error: asked again for the same refusal and counted against a model that is well. Now the
    request's, as vLLM's "maximum context length" and the other servers' context words inside a 200 are: the next
    model (one with a larger context may take it), this one not marked sick."""
    fault = Fault.raw(200, data({"error": XINFERENCE_TOO_LONG}), headers=SSE)
    routed, cooling = await route_cooling("openai", servers, tmp_path, fault, fault)
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)] and cooling == 0
    assert "maximum model length" in (routed.record.attempts[0].detail or "")


# -- reasoning counted apart from the answer --------------------------------------------------------------------------

def _usage(completion: int, reasoning: int, total: int) -> str:
    return data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": {
        "prompt_tokens": 12, "completion_tokens": completion, "total_tokens": total,
        "completion_tokens_details": {"reasoning_tokens": reasoning}}})


async def test_reasoning_xai_counts_apart_from_the_answer_is_logged(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """xAI's usage for grok-3-mini as vercel/ai#12425 printed it: completion_tokens=2, reasoning_tokens=317,
    total_tokens=331 (12 in the prompt). Logged as 2 tokens out, the 317 of reasoning went unlogged and unbilled (a
    priced model's cost 8.7x too low in inspect_ai#5528's run). OpenAI's own shape, the reasoning inside
    completion_tokens and the total their sum, is left as it is. A gateway relaying Gemini's thoughts the xAI way
    (CLIProxyAPI#5733: completion_tokens 0, reasoning_tokens 60, total 81 — its prompt 21, here 12) is read so too."""
    answer = [chunk({"role": "assistant", "content": "Hi."}), chunk({}, "stop")]
    servers["openai"].push(Fault.raw(200, *answer, _usage(2, 317, 331), DONE, headers=SSE),
                           Fault.raw(200, *answer, _usage(319, 317, 331), DONE, headers=SSE),
                           Fault.raw(200, *answer, _usage(0, 60, 72), DONE, headers=SSE))
    xai, openai_shape, gemini_relay = await _routed("openai", servers, tmp_path, PLAIN, PLAIN, PLAIN)
    assert (xai.record.tokens_in, xai.record.tokens_out) == (12, 319)
    assert (openai_shape.record.tokens_in, openai_shape.record.tokens_out) == (12, 319)
    assert (gemini_relay.record.tokens_in, gemini_relay.record.tokens_out) == (12, 60)
