"""A second outside-in pass over what real servers send (helper-34's hunt): each shape built from the public
spec or an issue thread of the server that sends it, replayed verbatim (``Fault.raw``) through the router.

Each ends in the primary's answer, read as the server meant it (thinking kept apart from the answer), or in a
fallback with the right reason, and always with exactly one row in the routing log. Streams whose end marker
the reader must recognise end in ``"hang"``: a marker missed shows as a timeout, not as a pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import (
    ANTHROPIC_TEXT,
    DONE,
    JSON,
    NDJSON,
    SSE,
    chunk,
    data,
    event,
    message,
    ndjson,
)

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, ToolDefinition

REQ = ChatRequest(messages=[Message("user", "Weather in Paris?")], tools=[ToolDefinition("get_weather")])
OK = "ok"
USAGE = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


def reasoning(text: str, key: str = "reasoning_content") -> str:
    return chunk({"role": "assistant", "content": None, key: text})


def choices(*entries: dict[str, Any], **extra: Any) -> str:
    return data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local", "choices": list(entries),
                 **extra})


def thinking_line(text: str) -> dict[str, Any]:
    return {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": "", "thinking": text},
            "done": False}


def block(index: int, content_block: dict[str, Any]) -> str:
    return event("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": content_block})


def delta(index: int, d: dict[str, Any]) -> str:
    return event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})


def stop(index: int) -> str:
    return event("content_block_stop", {"type": "content_block_stop", "index": index})


def message_delta(reason: str) -> str:
    return event("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason},
                                   "usage": {"output_tokens": 7}})


MESSAGE_START = event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9,
                                                                                       "output_tokens": 1}}})
MESSAGE_STOP = event("message_stop", {"type": "message_stop"})
EMOJI_BYTES = "Sunny \U0001f600 é.".encode()
WHOLE_ERROR = {"error": {"message": "Provider returned error", "code": 429,
                         "metadata": {"raw": "rate limited upstream", "provider_name": "Together"}}}

#: (name, wire format, the raw answer, what the primary's attempt ends in, the answer text, its thinking)
SHAPES: list[tuple[str, str, Fault, str, str | None, str | None]] = [
    # -- OpenAI-compatible streams -------------------------------------------------------------------------
    # DeepSeek's API and vLLM before 0.10 (reasoning_content), vLLM since and OpenRouter (reasoning), llama-server
    # --reasoning-format deepseek: thinking in its own field, then the answer in content
    ("deepseek_reasoning_content", "openai", Fault.raw(
        200, reasoning("Paris is "), reasoning("in France."), chunk({"content": "Sunny."}), chunk({}, "stop"), DONE,
        headers=SSE), OK, "Sunny.", "Paris is in France."),
    ("vllm_reasoning_field", "openai", Fault.raw(
        200, reasoning("Hmm.", "reasoning"), chunk({"content": "Sunny."}), chunk({}, "stop"), DONE, headers=SSE),
     OK, "Sunny.", "Hmm."),
    # vLLM's reasoning parsers put everything into reasoning until they see </think> ("no </think> seen yet,
    # everything is reasoning"): a Qwen3 asked not to think, or a template without the tag, answers no text at all
    ("reasoning_only_no_answer", "openai", Fault.raw(
        200, reasoning("The weather in Paris is sunny."), chunk({}, "stop"), DONE, headers=SSE),
     "unusable_reply", None, None),
    # Azure OpenAI: the first chunk has "choices": [] and the prompt's filter results; with include_usage the
    # last chunk has "choices": [] and the usage
    ("azure_prompt_filter_chunk_then_usage_chunk", "openai", Fault.raw(
        200, choices(prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}]),
        chunk({"role": "assistant", "content": "Sunny."}), chunk({}, "stop"), choices(usage=USAGE), DONE,
        headers=SSE), OK, "Sunny.", ""),
    ("delta_null", "openai", Fault.raw(
        200, chunk({"content": "Sunny."}), chunk(None, "stop"), DONE, headers=SSE), OK, "Sunny.", ""),
    ("openrouter_processing_comments", "openai", Fault.raw(
        200, ": OPENROUTER PROCESSING\n\n", ": OPENROUTER PROCESSING\n\n", chunk({"content": "Sunny."}),
        ": keep-alive\n\n", chunk({}, "stop"), DONE, headers=SSE), OK, "Sunny.", ""),
    ("done_without_a_space", "openai", Fault.raw(
        200, chunk({"content": "Sunny."}), chunk({}, "stop"), "data:[DONE]\n\n", headers=SSE, end="hang"),
     OK, "Sunny.", ""),
    ("crlf_through_done", "openai", Fault.raw(
        200, (chunk({"content": "Sunny."}) + chunk({}, "stop") + DONE).replace("\n", "\r\n"), headers=SSE,
        end="hang"), OK, "Sunny.", ""),
    ("clean_close_after_finish_without_done", "openai", Fault.raw(
        200, chunk({"content": "Sunny."}), chunk({}, "stop"), headers=SSE), OK, "Sunny.", ""),
    ("clean_close_before_finish_without_done", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), headers=SSE), "connection_dropped", None, None),
    # OpenRouter and LiteLLM: HTTP 200 whose body is an error object (as JSON, and as the event stream's data)
    ("openrouter_200_json_error", "openai", Fault.raw(200, json.dumps(WHOLE_ERROR), headers=JSON),
     "rate_limited", None, None),
    ("openrouter_200_error_event", "openai", Fault.raw(200, data(WHOLE_ERROR), headers=SSE),
     "rate_limited", None, None),
    # LiteLLM's proxy writes its error codes as text ("code": "429", litellm#37599) with "type": "None"
    ("litellm_error_code_as_text", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), data({"error": {"message": "litellm.RateLimitError: quota", "type": "None",
                                                        "param": "None", "code": "429"}}), headers=SSE),
     "rate_limited", None, None),
    # a multi-byte UTF-8 character cut between two TCP reads
    ("utf8_split_across_reads", "openai", Fault.raw(
        200, b'data: {"choices":[{"index":0,"delta":{"content":"' + EMOJI_BYTES[:8], EMOJI_BYTES[8:13],
        EMOJI_BYTES[13:] + b'"},"finish_reason":null}]}\n\n', chunk({}, "stop"), DONE, headers=SSE, interval=0.05),
     OK, "Sunny \U0001f600 é.", ""),
    # n > 1 (a client's n passed on by a proxy, or a server's default): choices told apart by index; the answer
    # is choice 0, not the choices glued together
    ("n_2_choices", "openai", Fault.raw(
        200, choices({"index": 0, "delta": {"content": "Sun"}, "finish_reason": None},
                     {"index": 1, "delta": {"content": "Rain"}, "finish_reason": None}),
        choices({"index": 1, "delta": {"content": "y."}, "finish_reason": None},
                {"index": 0, "delta": {"content": "ny."}, "finish_reason": None}),
        choices({"index": 0, "delta": {}, "finish_reason": "stop"}, {"index": 1, "delta": {}, "finish_reason": "stop"}),
        DONE, headers=SSE), OK, "Sunny.", ""),
    # -- Ollama ----------------------------------------------------------------------------------------------
    ("ollama_thinking_field", "ollama", Fault.raw(
        200, ndjson(thinking_line("Paris? ")), ndjson(thinking_line("Sunny.")), ndjson(message("Sunny.")),
        ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 5}), headers=NDJSON),
     OK, "Sunny.", "Paris? Sunny."),
    # Ollama answers a chat it cannot run (no user turn: oh-my-pi#7465) or a bare load with done_reason "load"
    # and nothing generated; "unload" likewise (keep_alive 0): not an empty success
    ("ollama_done_reason_load", "ollama", Fault.raw(
        200, ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                     "done_reason": "load"}), headers=NDJSON), "bad_request", None, None),
    ("ollama_done_reason_unload", "ollama", Fault.raw(
        200, ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                     "done_reason": "unload"}), headers=NDJSON), "bad_request", None, None),
    # a stop with nothing generated (ollama#16326 under load; langchain#31482): not an answer
    ("ollama_empty_stop", "ollama", Fault.raw(
        200, ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                     "done_reason": "stop", "eval_count": 0}), headers=NDJSON), "unusable_reply", None, None),
    ("ollama_model_not_pulled", "ollama", Fault.raw(
        404, '{"error":"model \'qwen3.5:latest\' not found, try pulling it first"}', headers=JSON),
     "model_missing", None, None),
    ("ollama_does_not_support_tools", "ollama", Fault.raw(
        400, '{"error":"registry.ollama.ai/library/gemma:2b does not support tools"}', headers=JSON),
     "bad_request", None, None),
    ("ollama_does_not_support_thinking", "ollama", Fault.raw(
        400, '{"error":"\\"llama3.2:latest\\" does not support thinking"}', headers=JSON), "bad_request", None, None),
    ("ollama_error_line_mid_stream", "ollama", Fault.raw(
        200, ndjson(message("Sun")), ndjson({"error": "an error was encountered while running the model: "
                                                      "unexpected EOF"}), headers=NDJSON),
     "stream_error", None, None),
    # -- Anthropic ---------------------------------------------------------------------------------------------
    # extended thinking: a thinking block (thinking_delta, then signature_delta), a redacted_thinking block, text
    ("anthropic_thinking_signature_redacted", "anthropic", Fault.raw(
        200, MESSAGE_START, event("ping", {"type": "ping"}),
        block(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "Paris in June."}),
        delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk"}),
        stop(0), block(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}), stop(1),
        block(2, {"type": "text", "text": ""}), delta(2, {"type": "text_delta", "text": "Sunny."}), stop(2),
        message_delta("end_turn"), MESSAGE_STOP, headers=SSE), OK, "Sunny.", "Paris in June."),
    # a server tool (web search) runs at Anthropic: its input streams as input_json_delta, it is not our tool call
    ("anthropic_server_tool_use", "anthropic", Fault.raw(
        200, MESSAGE_START, block(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                                      "input": {}}),
        delta(0, {"type": "input_json_delta", "partial_json": ""}),
        delta(0, {"type": "input_json_delta", "partial_json": '{"query": "paris weather"}'}), stop(0),
        block(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}), stop(1),
        block(2, {"type": "text", "text": ""}), delta(2, {"type": "text_delta", "text": "Sunny."}), stop(2),
        message_delta("end_turn"), MESSAGE_STOP, headers=SSE), OK, "Sunny.", ""),
    # a paused turn (server tools' iteration limit) is half an answer: it used to pass as finish_reason "stop"
    ("anthropic_pause_turn", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, message_delta("pause_turn"), MESSAGE_STOP, headers=SSE), "unusable_reply", None, None),
    ("anthropic_overloaded_mid_stream", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                         "message": "Overloaded"}}), headers=SSE),
     "overloaded", None, None),
    ("anthropic_413_request_too_large", "anthropic", Fault.raw(
        413, '{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum '
             'allowed number of bytes."}}', headers=JSON), "bad_request", None, None),
]


@pytest.mark.parametrize(("name", "kind", "fault", "want", "text", "thinking"), SHAPES, ids=[s[0] for s in SHAPES])
async def test_wire_shape(name: str, kind: str, fault: Fault, want: str, text: str | None, thinking: str | None,
                          servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811 - fixture
    servers[kind].push(fault)
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    first = routed.record.attempts[0]
    await router.aclose()
    writer.close()
    if want == OK:
        assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [("primary", "ok", None)], \
            first.detail
        assert (routed.response.text, routed.response.thinking) == (text, thinking)
    else:
        assert (first.model, first.reason) == ("primary", want), (first.reason, first.detail)
        assert first.outcome in ("retry", "fallback")
        assert routed.record.outcome in ("ok", "fallback")  # answered all the same, by a retry or the backup
        assert routed.response.text or routed.response.tool_calls
    rows = connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert rows == 1 and writer.health().failures == 0


async def test_usage_only_last_chunk_is_the_bill(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """With stream_options.include_usage the usage comes alone in a last chunk with "choices": []."""
    servers["openai"].push(Fault.raw(200, chunk({"content": "Sunny."}), chunk({}, "stop"), choices(usage=USAGE), DONE,
                                     headers=SSE))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert (routed.record.tokens_in, routed.record.tokens_out) == (9, 5)


async def test_thinking_is_not_billed_as_answer_text(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Without a usage report the output is counted per delta: reasoning deltas are output tokens too (they are
    billed as such), but they never reach the answer text or the stored response."""
    servers["openai"].push(Fault.raw(200, reasoning("a"), reasoning("b"), chunk({"content": "Sunny."}),
                                     chunk({}, "stop"), DONE, headers=SSE))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert routed.response.text == "Sunny." and routed.response.thinking == "ab"
    row = connect(tmp_path / "log.db").execute("SELECT response FROM requests").fetchone()
    assert row["response"] in (None, "Sunny.")


@pytest.mark.parametrize(("kind", "raw", "finish"), [
    # OpenAI / Azure: the output was filtered; Anthropic's streaming classifier: a refusal. Passed on as the
    # provider's word (the gateway says content_filter), not retried elsewhere: a policy answer, not a broken model
    ("openai", [chunk({"content": "I can"}), chunk({}, "content_filter"), DONE], "content_filter"),
    ("anthropic", [ANTHROPIC_TEXT, message_delta("refusal"), MESSAGE_STOP], "refusal"),
])
async def test_a_filtered_answer_keeps_its_finish_reason(kind: str, raw: list[str], finish: str,
                                                         servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    servers[kind].push(Fault.raw(200, *raw, headers=SSE))
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert [(a.model, a.outcome) for a in routed.record.attempts] == [("primary", "ok")]
    row = connect(tmp_path / "log.db").execute("SELECT finish_reason FROM requests").fetchone()
    assert row["finish_reason"] == finish


async def test_anthropic_tool_input_opens_with_an_empty_partial_json(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """The API's first input_json_delta of a tool_use block is documented as possibly empty."""
    servers["anthropic"].push(Fault.raw(
        200, MESSAGE_START, block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        delta(0, {"type": "input_json_delta", "partial_json": ""}),
        delta(0, {"type": "input_json_delta", "partial_json": '{"city": '}),
        delta(0, {"type": "input_json_delta", "partial_json": '"Paris"}'}), stop(0), message_delta("tool_use"),
        MESSAGE_STOP, headers=SSE))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [("get_weather", {"city": "Paris"},
                                                                                 "toolu_1")]


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("kind", "headers", "want"), [
    # Anthropic documents retry-after with its 429s, and its rate-limit headers beside it; a proxy may keep only
    # the latter. The exhausted limit (remaining 0) says when the model is worth asking again
    ("anthropic", {"anthropic-ratelimit-requests-remaining": "10", "anthropic-ratelimit-requests-reset": "{in20}",
                   "anthropic-ratelimit-input-tokens-remaining": "0",
                   "anthropic-ratelimit-input-tokens-reset": "{in600}"}, 600),
    # OpenAI's (and LiteLLM's, vLLM routers') x-ratelimit-* headers: a Go-style duration
    ("openai", {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
                "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "1s"}, 360),
])
async def test_a_429_without_retry_after_cools_down_until_the_limit_resets(
        kind: str, headers: dict[str, str], want: float, servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    filled = {k: v.format(in20=_in(20), in600=_in(600)) for k, v in headers.items()}
    servers[kind].push(Fault.status(429, headers=filled))
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    left = router.pool.local("primary").health.seconds_left()
    await router.aclose()
    writer.close()
    assert routed.record.attempts[0].reason == "rate_limited" and routed.record.model == "backup"
    assert want - 15 < left <= want, left  # not the breaker's own few seconds (cooldown.seconds 1 here)


async def test_ollama_refusing_think_is_learned_and_the_model_answers(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """Ollama answers ``think`` for a model that cannot think with 400 '"x" does not support thinking'. As a plain
    bad_request every request with thinking on asked the model, was refused and fell back; now the provider learns
    it (as probe would) and asks again without think, and later requests go without it from the start."""
    servers["ollama"].push(Fault.raw(400, '{"error":"\\"qwen3.5:latest\\" does not support thinking"}', headers=JSON))
    router, writer = router_for("ollama", servers, tmp_path / "log.db")
    thinking = ChatRequest(messages=[Message("user", "Say hello")], thinking=True)
    first = await router.complete("agent", thinking)
    second = await router.complete("agent", thinking)
    await router.aclose()
    writer.close()
    for routed in (first, second):
        assert [(a.model, a.outcome) for a in routed.record.attempts] == [("primary", "ok")]
        assert routed.response.text == "Hello from the primary."
    sent = [r.json.get("think") for r in servers["ollama"].requests if r.path == "/api/chat"]
    assert sent == [True, None, None]


async def test_a_10_mb_line_is_refused_within_the_default_limit(tmp_path: Path) -> None:
    """One 10 MB SSE line (a proxy that buffers, a model that never stops) at the default max_response_mb (8):
    response_too_large, the next model answers, and no more than the limit is ever held (traced allocations)."""
    import tracemalloc

    from tests.fakes import OpenAIServer
    from tests.helpers import make_config

    from modelyard.router import Router

    with OpenAIServer(models=["local"]) as primary, OpenAIServer(models=["b"], reply_text="backup") as backup:
        line = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * (10 * 2**20) + b'"}}]}\n\n'
        config = make_config({"p": {"provider": "openai", "model": "local", "endpoint": primary.url},
                              "b": {"provider": "openai", "model": "b", "endpoint": backup.url}},
                             {"agent": {"primary": "p", "fallbacks": ["b"]}}, defaults={"retries": {"attempts": 0}})
        router = Router(config)
        await router.complete("agent", ChatRequest(messages=[Message("user", "warm up")]))
        primary.push(Fault.raw(200, *[line[i:i + 65536] for i in range(0, len(line), 65536)], headers=SSE))
        del line
        tracemalloc.start()
        try:
            routed = await router.complete("agent", ChatRequest(messages=[Message("user", "hi")]))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await router.aclose()
    assert [(a.model, a.reason) for a in routed.record.attempts] == [("p", "response_too_large"), ("b", None)]
    assert peak < 12 * 2**20, f"{peak / 2**20:.1f} MB held for one line"
