"""A fifth outside-in pass (helper-60's hunt): what the servers users run say when they refuse, which no pass before
modelled — llama.cpp's llama-server, TGI and Hugging Face's endpoints, KoboldCpp, LM Studio, SGLang, OpenRouter, Groq,
Gemini's and Cerebras' OpenAI-compatible APIs, Ollama's /v1. Each body is copied from the server's source, its
documentation or an issue thread where its users met it (cited per test), replayed verbatim through the router
(``Fault.raw``).

Each ends in the reason that makes the router do what the server meant — retry, wait, cool, or move on without
holding it against the model — and an attempt row whose detail says what the server said; each failed on the code
before this pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import JSON, SSE
from tests.integration.test_wire_shapes_round3 import REQ, outcomes, route_cooling

from modelyard.types import ChatRequest, Message


def body(obj: Any) -> str:
    return json.dumps(obj)


def detail(routed: Any, index: int = 0) -> str:
    return routed.record.attempts[index].detail or ""


# -- llama-server ---------------------------------------------------------------------------------------------------

async def test_llama_server_without_jinja_refuses_tools_as_the_request_not_the_model(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """llama-server started without ``--jinja`` (the default before it was switched on; ramalama, LLMKube and
    AstrBot users met it: LLMKube#126, AstrBot#758) refuses a request with tools as a 500 ``server_error``:
    ``{"error":{"code":500,"message":"tools param requires --jinja flag","type":"server_error"}}``. As a server
    error it was retried (refused again), then counted against the model — a few tool requests cooled it for every
    request, tools or not. It is this request the server cannot take: the next model answers, the model stays in
    service, and the row says to start the server with --jinja."""
    refusal = Fault.raw(500, body({"error": {"code": 500, "message": "tools param requires --jinja flag",
                                             "type": "server_error"}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, refusal, refusal)
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "start it with --jinja" in detail(routed)
    assert cooling == 0


# -- Groq, TGI, Hugging Face: the server is busy or loading --------------------------------------------------------

async def test_groqs_498_capacity_exceeded_is_overloaded(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Groq's own status 498 "Flex Tier Capacity Exceeded" (its error docs: the flex tier is at capacity, try again
    later; error ``capacity_exceeded``). As an unknown 4xx it was a bad_request: never retried, not counted, and a
    chain exhausted by it told the client not to retry (400)."""
    busy = Fault.raw(498, body({"error": {"message": "Flex tier capacity exceeded. Please try again later.",
                                          "type": "capacity_exceeded"}}), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, busy, busy)
    assert outcomes(routed) == [("primary", "retry", "overloaded"), ("primary", "fallback", "overloaded"),
                                ("backup", "ok", None)]


async def test_tgi_generation_failure_is_a_server_error(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """text-generation-inference answers a failure inside generation with 424 and its own word in ``error_type``
    (text-generation-inference#1510: ``{"error":"Request failed during generation: Server error: index 1 is out of
    bounds for dimension 0 with size 1","error_type":"generation"}``). A 424 was a bad_request: not retried, not held
    against the server, and "do not retry" to the client. It is the server failing: retried, then the next model."""
    failed = Fault.raw(424, body({"error": "Request failed during generation: Server error: index 1 is out of bounds "
                                           "for dimension 0 with size 1", "error_type": "generation"}), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, failed, failed)
    assert outcomes(routed) == [("primary", "retry", "server_error"), ("primary", "fallback", "server_error"),
                                ("backup", "ok", None)]
    assert "generation: Request failed during generation" in detail(routed)


async def test_a_model_still_loading_cools_for_the_time_it_gives(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Hugging Face's serverless inference and its TGI endpoints answer 503 while a model loads, with how long it
    will take (transformers#23793: ``{"error":"Model meta-llama/Llama-2-13b-chat is currently loading",
    "estimated_time":20.0}``). Without a retry-after the model was asked again at once, refused, and asked again on
    the next request; now it rests for the estimate."""
    loading = Fault.raw(503, body({"error": "Model meta-llama/Llama-2-13b-chat is currently loading",
                                   "estimated_time": 20.0}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, loading)
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    assert 15 < cooling <= 20  # not the breaker's 1 s (cooldown.seconds here)
    assert "is currently loading" in detail(routed)


@pytest.mark.parametrize(("status", "error", "said"), [
    # KoboldCpp's answer to every POST while it generates (koboldcpp.py: modelbusy), its OpenAI endpoints too
    (503, {"detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}},
     "HTTP 503 service_unavailable: Server is busy; please try again later."),
    # FastAPI's 422 (a server built on it refusing a field), a list of {loc, msg, type}
    (422, {"detail": [{"loc": ["body", "messages", 0, "content"], "msg": "Field required", "type": "missing"}]},
     "HTTP 422: body.messages.0.content: Field required"),
    # Mistral's 422: the message is itself FastAPI's detail
    (422, {"object": "error", "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"],
                                                      "msg": "Extra inputs are not permitted"}]},
           "type": "invalid_request_error", "param": None, "code": None},
     "HTTP 422 invalid_request_error: body.stream_options: Extra inputs are not permitted"),
])
async def test_fastapi_detail_bodies_say_what_the_server_said(status: int, error: dict[str, Any], said: str,
                                                              servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Servers built on FastAPI put their error in ``detail``: the row said "HTTP 503" and nothing else (or Python's
    repr of Mistral's object), and the client reading the exhausted chain learned nothing of why."""
    refusal = Fault.raw(status, body(error), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, refusal, refusal)
    assert detail(routed) == said


# -- OpenRouter ---------------------------------------------------------------------------------------------------

def _epoch_ms(seconds: float) -> str:
    return str(int((time.time() + seconds) * 1000))


async def test_openrouters_daily_free_limit_cools_until_its_reset(servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """OpenRouter's free models' daily limit: a 429 with no retry-after, the reset only in the body's
    ``metadata.headers``, in epoch milliseconds (openclaude#936: "Rate limit exceeded: free-models-per-day. Add 10
    credits to unlock 1000 free model requests per day", ``X-RateLimit-Remaining: "0"``). The model cooled for the
    breaker's second and was asked, and refused, on every request until the day turned."""
    limited = Fault.raw(429, body({"error": {
        "message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per "
                   "day", "code": 429,
        "metadata": {"headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": _epoch_ms(3 * 3600)}, "provider_name": None}}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, limited)
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert 3600 - 15 < cooling <= 3600  # the reset is 3 h away: cooldown.max_retry_after (1 h) bounds it


@pytest.mark.parametrize(("form", "want"), [
    ("epoch_ms", 600),  # OpenRouter's headers on the response itself: a time in epoch milliseconds
    ("epoch_s", 600),  # a time in epoch seconds
    ("seconds", 42),  # a plain number of seconds to wait, as most APIs give their resets
])
async def test_the_rate_limit_pair_without_a_kind_is_read(form: str, want: float, servers: dict[str, Any],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """``x-ratelimit-remaining`` / ``x-ratelimit-reset`` without a kind (OpenRouter's, whose reset is a time; a
    client's fix for its free tier had to read it: TranslateBooksWithLLMs#125): only the per-kind pairs
    (``-requests``, ``-tokens``) were read, so such a 429 cooled the model for the breaker's second."""
    reset = {"epoch_ms": _epoch_ms(600), "epoch_s": str(int(time.time()) + 600), "seconds": "42"}[form]
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.status(
        429, headers={"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert want - 15 < cooling <= want


async def test_openrouter_moderation_refuses_the_input_not_the_key(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """OpenRouter's 403 is "Your chosen model requires moderation and your input was flagged", with the reasons in
    ``error.metadata`` (its errors documentation). As a 403 it was an auth_error: the model cooled for
    ``cooldown.max_seconds`` as for a revoked key, for every request after one flagged prompt. The input was
    refused: another model may answer it, and this one stays in service."""
    flagged = Fault.raw(403, body({"error": {
        "code": 403, "message": "Your chosen model requires moderation and your input was flagged",
        "metadata": {"reasons": ["violence"], "flagged_input": "Weather in Paris?", "provider_name": "OpenAI",
                     "model_slug": "openai/gpt-4o"}}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, flagged)
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert cooling == 0
    assert "(flagged: violence)" in detail(routed)


async def test_openrouters_provider_error_says_the_upstreams_words(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """OpenRouter passes an upstream's refusal on as "Provider returned error", its own words in
    ``metadata.raw`` (OmniRoute#3044, open-webui/computer#293, zed#64424): the row and the client said only
    "Provider returned error"."""
    raw = body({"error": {"type": "invalid_request_error", "code": "invalid_request_error",
                          "message": "Model 'moonshotai/kimi-k2.6' supports at most 1 image per prompt."}})
    refusal = Fault.raw(400, body({"error": {"message": "Provider returned error", "code": 400,
                                             "metadata": {"raw": raw, "provider_name": "Crucible"}}}), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, refusal)
    assert detail(routed) == ("HTTP 400: Provider returned error (Crucible: Model 'moonshotai/kimi-k2.6' supports at "
                              "most 1 image per prompt.)")


async def test_an_upstreams_max_tokens_refusal_through_openrouter_is_clamped(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """The same, where the upstream (a vLLM behind OpenRouter) refused a max_tokens past its context: its words
    state the room left, so the request is asked once more within it and the primary answers. Behind "Provider
    returned error" they could not be read: the next model answered."""
    raw = ("This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (1000 in the "
           "messages, 8000 in the completion). Please reduce the length of the messages or completion.")
    servers["openai"].push(Fault.raw(400, body({"error": {"message": "Provider returned error", "code": 400,
                                                          "metadata": {"raw": raw, "provider_name": "DeepInfra"}}}),
                                     headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    asked = ChatRequest(messages=REQ.messages, tools=REQ.tools, max_tokens=8000)
    routed = await router.complete("agent", asked)
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "retry", "bad_request"), ("primary", "ok", None)]
    sent = [r.json.get("max_tokens") for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [8000, 7192]


# -- Ollama's OpenAI-compatible /v1 --------------------------------------------------------------------------------

async def test_ollama_v1_with_no_room_for_the_model_cools_it(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Ollama's /v1 says what its /api/chat says when the machine has no room for the model, as a 500 in OpenAI's
    shape (continue#11478). On /api/chat that cools the model (fourth hunt); through /v1 — the endpoint LiteLLM,
    Open WebUI and most OpenAI clients are pointed at — it was a server error, asked again at once and refused
    again on every request."""
    no_room = Fault.raw(500, body({"error": {"message": "model requires more system memory (5.3 GiB) than is "
                                                        "available (3.5 GiB)", "type": "api_error", "param": None,
                                             "code": None}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, no_room, no_room)
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]  # round 12: not missing
    assert cooling > 4  # rested (http.NO_MEMORY_WAIT), past the breaker's seconds


async def test_an_error_string_with_nothing_in_it_is_not_a_crash(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Guards the readers above: ``"error": null`` / ``""`` beside a FastAPI ``detail`` of another shape, and a
    ``metadata`` that is not what OpenRouter sends, still end in the status's reason with a readable detail."""
    odd = Fault.raw(500, body({"error": {"message": None, "metadata": {"raw": {"nested": [1, 2]}, "provider_name": 7},
                                         "detail": 12}}), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, odd, odd)
    assert outcomes(routed)[-1] == ("backup", "ok", None)
    assert routed.record.attempts[0].reason == "server_error"


# -- llama_cpp.server: an empty stream ---------------------------------------------------------------------------

#: what llama_cpp.server (llama-cpp-python 0.3.36) answers a prompt past its context, asked without streaming (asked
#: streaming, the same request gets a 200 event stream framed empty: the error is raised inside the stream)
OVER_CONTEXT = body({"error": {"message": "This model's maximum context length is 256 tokens. However, you requested "
                                          "437 tokens (429 in the messages, 8 in the completion). Please reduce the "
                                          "length of the messages or completion.", "type": "invalid_request_error",
                               "param": "messages", "code": "context_length_exceeded"}})


async def test_an_empty_event_stream_is_asked_again_whole_and_says_why(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """llama_cpp.server answers a streamed prompt past its context with a 200 event stream and no byte in it (seen
    with the real server: its error is raised inside the stream). That was malformed_response — a health failure
    of a model that is well — and nothing said why. Asked once more whole, the server says it: a bad_request with
    its words, the model stays in service (the real server: ``test_real_model.py``)."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(200, headers=SSE),
                                          Fault.raw(400, OVER_CONTEXT, headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "maximum context length is 256 tokens" in detail(routed)
    assert cooling == 0
    sent = [r.json.get("stream") for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [True, False]


async def test_an_empty_event_stream_then_a_whole_answer_is_the_answer(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """The same empty stream, from a server that answers whole when asked so: the primary's answer."""
    routed, _ = await route_cooling("openai", servers, tmp_path, Fault.raw(200, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [c.name for c in routed.response.tool_calls] == ["get_weather"]  # the fake's answer to REQ's tools


# -- Gemini's OpenAI-compatible endpoint, Cerebras ---------------------------------------------------------------

async def test_geminis_list_wrapped_429_says_its_words_and_waits_its_delay(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """Gemini's OpenAI-compatible endpoint (generativelanguage.googleapis.com/v1beta/openai) answers its errors as a
    JSON *list* of one error object (page-assist#406: ``[{"error": {"code": 429, "message": "Resource has been
    exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}]``), the wait in Google's ``RetryInfo``
    detail. The row held the raw JSON's first 120 characters, and the model cooled for the breaker's second."""
    exhausted = Fault.raw(429, body([{"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}]), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, exhausted)
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert detail(routed) == "HTTP 429 RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."
    assert 37 - 15 < cooling <= 37


async def test_cerebras_daily_limit_headers_are_read(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Cerebras names its limits by kind *and* window (``x-ratelimit-remaining-requests-day``,
    ``x-ratelimit-reset-requests-day: 33011.4``, seconds; Cerebras' rate-limit docs and the clients that read them):
    only ``-requests`` / ``-tokens`` / ``-input-tokens`` / ``-output-tokens`` were read."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.status(429, headers={
        "x-ratelimit-limit-requests-day": "14400", "x-ratelimit-remaining-requests-day": "0",
        "x-ratelimit-reset-requests-day": "3011.382867", "x-ratelimit-remaining-tokens-minute": "60000",
        "x-ratelimit-reset-tokens-minute": "11.382867"}))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert 3011 - 15 < cooling <= 3012


# -- the model's own failure, said in the request's status ------------------------------------------------------

async def test_groqs_tool_use_failed_is_the_models_unusable_answer(servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """Groq answers a tool call its model wrote that does not parse with a 400 ``tool_use_failed`` (the model's
    text in ``failed_generation``; clients retry it, it is intermittent). As a 400 it was a bad_request: a chain
    ending on it told the client its own request was wrong (400, do not retry). The answer was unusable, as a tool
    call written as plain text is; the model's text stays out of the row."""
    failed = Fault.raw(400, body({"error": {
        "message": "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
        "type": "invalid_request_error", "code": "tool_use_failed",
        "failed_generation": "<function=get_weather{\"city\": \"Paris\"}</function>"}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, failed)
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)]
    assert "Failed to call a function" in detail(routed) and "<function=" not in detail(routed)
    assert cooling == 0


def _or_chunk(choice: dict[str, Any]) -> str:
    return "data: " + body({"id": "gen-1", "object": "chat.completion.chunk", "model": "openai/gpt-4o",
                            "provider": "OpenAI", "choices": [choice]}) + "\n\n"


@pytest.mark.parametrize("streamed", [True, False])
async def test_openrouters_error_inside_a_choice_keeps_its_code(streamed: bool, servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """OpenRouter puts a failure met after the 200 in the choice itself — ``choices[].error`` beside
    ``finish_reason: "error"`` (its API reference; the typed clients carry it, koog's OpenRouterStreamChoice), the
    status in ``code``. It was a stream_error without a word: an upstream's rate limit asked again at once, and
    the model never cooled."""
    err = {"code": 429, "message": "Provider returned error",
           "metadata": {"raw": "deepseek/deepseek-r1:free is temporarily rate-limited upstream",
                        "provider_name": "Chutes"}}
    if streamed:
        fault = Fault.raw(200, _or_chunk({"index": 0, "delta": {"content": "Sun"}, "finish_reason": None}),
                          _or_chunk({"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                                     "native_finish_reason": "error", "error": err}), "data: [DONE]\n\n",
                          headers=SSE)
    else:
        fault = Fault.raw(200, body({"id": "gen-1", "object": "chat.completion", "model": "openai/gpt-4o",
                                     "choices": [{"index": 0, "message": {"role": "assistant", "content": ""},
                                                  "finish_reason": "error", "error": err}]}), headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, fault, fault)
    assert [(a.outcome, a.reason) for a in routed.record.attempts][-1] == ("ok", None)
    assert routed.record.attempts[0].reason == "rate_limited"
    assert "temporarily rate-limited upstream" in detail(routed)


# -- checked and already held ----------------------------------------------------------------------------------------

def _data(obj: Any) -> str:
    return "data: " + body(obj) + "\n\n"


_LLAMA_SERVER = [  # llama-server's stream (tools/server): its timings object and n_probs' logprobs on the last chunks
    _data({"choices": [{"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}],
           "created": 1732000000, "id": "chatcmpl-x", "model": "qwen", "system_fingerprint": "b6500-1a2b3c",
           "object": "chat.completion.chunk"}),
    _data({"choices": [{"finish_reason": None, "index": 0, "delta": {"content": "Sunny."},
                        "logprobs": {"content": [{"id": 50, "token": "Sunny.", "logprob": -0.01, "bytes": [83],
                                                  "top_logprobs": [{"id": 50, "logprob": -0.01}]}]}}],
           "created": 1732000000, "id": "chatcmpl-x", "model": "qwen", "object": "chat.completion.chunk"}),
    _data({"choices": [{"finish_reason": "stop", "index": 0, "delta": {}}], "created": 1732000000,
           "id": "chatcmpl-x", "model": "qwen", "object": "chat.completion.chunk",
           "usage": {"completion_tokens": 2, "prompt_tokens": 9, "total_tokens": 11},
           "timings": {"cache_n": 0, "prompt_n": 9, "prompt_ms": 20.1, "prompt_per_token_ms": 2.2,
                       "prompt_per_second": 447.7, "predicted_n": 2, "predicted_ms": 30.5,
                       "predicted_per_token_ms": 15.2, "predicted_per_second": 65.5}}),
    "data: [DONE]\n\n",
]
_VLLM = [  # vLLM with stream_options continuous_usage_stats: usage on every chunk, stop_reason a token id
    _data({"id": "chatcmpl-y", "object": "chat.completion.chunk", "model": "qwen",
           "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                        "finish_reason": None}], "usage": {"prompt_tokens": 9, "total_tokens": 9,
                                                          "completion_tokens": 0}}),
    _data({"id": "chatcmpl-y", "object": "chat.completion.chunk", "model": "qwen",
           "choices": [{"index": 0, "delta": {"content": "Sunny."}, "logprobs": None, "finish_reason": None}],
           "usage": {"prompt_tokens": 9, "total_tokens": 10, "completion_tokens": 1}}),
    _data({"id": "chatcmpl-y", "object": "chat.completion.chunk", "model": "qwen",
           "choices": [{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": "stop",
                        "stop_reason": 151645}], "usage": {"prompt_tokens": 9, "total_tokens": 11,
                                                           "completion_tokens": 2}}),
    _data({"id": "chatcmpl-y", "object": "chat.completion.chunk", "model": "qwen", "choices": [],
           "usage": {"prompt_tokens": 9, "total_tokens": 11, "completion_tokens": 2,
                     "prompt_tokens_details": None}}),
    "data: [DONE]\n\n",
]


@pytest.mark.parametrize("raw", [_LLAMA_SERVER, _VLLM], ids=["llama-server", "vllm"])
async def test_llama_server_and_vllm_extras_are_read_past(raw: list[str], servers: dict[str, Any],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """Held already (guards): llama-server's ``timings`` and n_probs ``logprobs``, vLLM's usage on every chunk
    (``continuous_usage_stats``) and its ``stop_reason`` token id are extras the answer is read past."""
    routed, _ = await route_cooling("openai", servers, tmp_path, Fault.raw(200, *raw, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.response.stop_reason == "stop"
    assert (routed.record.tokens_in, routed.record.tokens_out) == (9, 2)


async def test_llama_server_loading_model_is_overloaded(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """llama-server's 503 while it loads the model, ``{"error":{"code":503,"message":"Loading model","type":
    "unavailable_error"}}``: overloaded; since hunt8 it rests instead of being asked again at once
    (test_native_protocols_round8)."""
    loading = Fault.raw(503, body({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
                        headers=JSON)
    routed, _ = await route_cooling("openai", servers, tmp_path, loading, loading)
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    assert detail(routed) == "HTTP 503 unavailable_error: Loading model"


@pytest.mark.parametrize("where", ["status", "midstream"])
async def test_a_raw_nested_past_the_parsers_depth_is_no_crash(where: str, servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """Guards the ``metadata.raw`` reader: an error whose raw holds error objects 250 deep (750 objects: orjson still
    reads them), none with a message, is read one level and said as what it is, however deep it goes."""
    deep: dict[str, Any] = {"message": None}
    for _ in range(250):
        deep = {"error": {"message": None, "metadata": {"raw": deep}}}
    err = {"message": "Provider returned error", "code": 502, "metadata": {"raw": deep, "provider_name": "X"}}
    fault = (Fault.raw(502, body({"error": err}), headers=JSON) if where == "status"
             else Fault.raw(200, _data({"error": err}), headers=SSE))
    routed, _ = await route_cooling("openai", servers, tmp_path, fault, fault)
    assert routed.record.attempts[0].reason in ("server_error", "stream_error")
    assert outcomes(routed)[-1] == ("backup", "ok", None)


async def test_lm_studios_200_for_a_path_it_does_not_serve_is_a_wrong_endpoint(servers: dict[str, Any],  # noqa: F811
                                                                               tmp_path: Path) -> None:
    """LM Studio answers a path it does not serve with a *200* and ``{"error":"Unexpected endpoint or method. (POST
    /chat/completions)"}`` (lmstudio-bug-tracker#618: "Returning 200 anyway"), e.g. an endpoint set to its
    ``/api/v0`` REST API. Read as an error under 200 it was a stream_error: asked again, and again on every request.
    It says the endpoint is wrong, as a 404 would: the model cools as a model not there, and the row says what to
    set."""
    wrong = Fault.raw(200, body({"error": "Unexpected endpoint or method. (POST /api/v0/v1/chat/completions)"}),
                      headers={"content-type": "application/json; charset=utf-8", "x-powered-by": "Express"})
    routed, cooling = await route_cooling("openai", servers, tmp_path, wrong, wrong)
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    assert "set the model's endpoint" in detail(routed)
    assert cooling > 4  # cooldown.max_seconds (5)


@pytest.mark.parametrize(("said", "room"), [
    # vLLM's renderer today (and Bedrock's, Cloudflare's OpenAI-compatible endpoints in front of it)
    ("This model's maximum context length is 32768 tokens. However, you requested 8192 output tokens and your "
     "prompt contains at least 24577 input tokens, for a total of at least 32769 tokens. Please reduce the length "
     "of the input prompt or the number of requested output tokens.", 8191),
    # SGLang
    ("Requested token count exceeds the model's maximum context length of 32768 tokens. You requested a total of "
     "33000 tokens: 24808 tokens from the input messages and 8192 tokens for the completion. Please reduce the "
     "number of tokens in the input messages or the completion to fit within the limit.", 7960),
])
async def test_vllms_and_sglangs_context_room_refusals_are_clamped(said: str, room: int, servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """A max_tokens past the room the prompt leaves, in the words vLLM uses now and SGLang uses (a benchmark's
    "transient 500" that was this 400 in disguise; Bedrock's GLM one token over its window): only vLLM's older
    wordings were read, so the request fell back instead of being asked once more within the room."""
    servers["openai"].push(Fault.raw(400, body({"object": "error", "message": said, "type": "BadRequestError",
                                                "param": "input_tokens", "code": 400}), headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", ChatRequest(messages=REQ.messages, tools=REQ.tools, max_tokens=8192))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "retry", "bad_request"), ("primary", "ok", None)]
    sent = [r.json.get("max_tokens") for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [8192, room]


# -- a field the server refuses ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "error"), [
    # Mistral's API: every OpenAI-style stream_options refused (openai-agents-python#442, avante.nvim#2347)
    (422, {"object": "error", "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options",
                                                                                      "include_usage"],
                                                      "msg": "Extra inputs are not permitted", "input": True}]},
           "type": "invalid_request_error", "param": None, "code": None}),
    # Azure OpenAI's older API versions
    (400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                     "type": "invalid_request_error", "param": None, "code": None}}),
])
async def test_a_server_that_refuses_stream_options_is_asked_without_it(status: int, error: dict[str, Any],
                                                                         servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """modelyard asks for the usage chunk with ``stream_options`` on every request; Mistral's API refuses the field
    (422 "Extra inputs are not permitted"), as Azure's older API versions do: every request fell back — a Mistral
    model configured as OpenAI-compatible was never used. Learned as probe would: asked again at once without it,
    and later requests go without it."""
    servers["openai"].push(Fault.raw(status, body(error), headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    first = await router.complete("agent", REQ)
    second = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    for routed in (first, second):
        assert outcomes(routed) == [("primary", "ok", None)]
    sent = ["stream_options" in r.json for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [True, False, False]


async def test_a_server_that_takes_nine_character_call_ids_gets_them(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """Mistral's API (and vLLM serving Mistral models) takes tool-call ids of exactly nine letters and digits
    (mistral-common's validator: "Tool call id was call_1_0 but must be a-z, A-Z, 0-9, with a length of 9."). A
    conversation begun on another model — OpenAI's ``call_…``, Anthropic's ``toolu_…``, the ids made up for
    Ollama's calls — was refused on every turn: Mistral could not take it over. Learned: the ids go as nine
    characters derived from each, the call and its result still paired, this turn and the next."""
    from modelyard.types import ToolCall

    history = ChatRequest(messages=[
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, "")]),  # begun on Ollama
        Message("tool", '{"sky": "clear"}', tool_call_id=""),
        Message("user", "And tomorrow?")], tools=REQ.tools)
    servers["openai"].push(Fault.raw(400, body({
        "object": "error", "message": "Tool call id was call_1_0 but must be a-z, A-Z, 0-9, with a length of 9.",
        "type": "invalid_request_message_order", "param": None, "code": "3230"}), headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    first = await router.complete("agent", history)
    second = await router.complete("agent", history)
    await router.aclose()
    writer.close()
    for routed in (first, second):
        assert outcomes(routed) == [("primary", "ok", None)]
    sent = [r.json["messages"] for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent[0][1]["tool_calls"][0]["id"] == "call_1_0"
    for messages in sent[1:]:
        call_id = messages[1]["tool_calls"][0]["id"]
        assert len(call_id) == 9 and call_id.isalnum() and messages[2]["tool_call_id"] == call_id


async def test_a_server_that_wants_reasoning_back_gets_it(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """DeepSeek's thinking mode with tools refuses an assistant turn without ``reasoning_content``: "Missing
    `reasoning_content` field in the assistant message at message index 1" (its thinking-mode guide; LangChain,
    AutoGen users met it). modelyard sends no reasoning back, so the second turn of every tool conversation was
    refused. Learned: each assistant turn carries its thinking where modelyard kept it, else empty (the ask again at
    once carries it empty: it is refitted from the body sent)."""
    from modelyard.types import ToolCall

    history = ChatRequest(messages=[
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, "call_1")],
                thinking="I should look it up."),
        Message("tool", '{"sky": "clear"}', tool_call_id="call_1")], tools=REQ.tools)
    servers["openai"].push(Fault.raw(400, body({"error": {
        "message": "Missing `reasoning_content` field in the assistant message at message index 1. For more "
                   "information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls",
        "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}), headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    first = await router.complete("agent", history)
    second = await router.complete("agent", history)
    await router.aclose()
    writer.close()
    for routed in (first, second):
        assert outcomes(routed) == [("primary", "ok", None)]
    sent = [r.json["messages"][1].get("reasoning_content") for r in servers["openai"].requests
            if r.path.endswith("/chat/completions")]
    assert sent == [None, "", "I should look it up."]
