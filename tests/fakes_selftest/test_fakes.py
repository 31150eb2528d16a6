"""Self-tests: each fake speaks its protocol and each fault misbehaves as documented."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import anthropic as anthropic_sdk  # the fixture below is called anthropic
import httpx
import pytest

from tests.cpu_wait import CpuWait
from tests.fakes import (
    AnthropicServer,
    Fault,
    FaultKind,
    OllamaServer,
    OpenAIServer,
    TelegramServer,
)
from tests.fakes.server import apoll

USER = [{"role": "user", "content": "What is the weather in Paris today?"}]
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
WEATHER_TOOL_ANTHROPIC = {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}
ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


# ----- fixtures and parsing helpers -------------------------------------------------------


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer(["llama3.2:1b", {"name": "qwen3:0.6b", "size": 522_000_000}]) as server:
        yield server


@pytest.fixture
def openai() -> Iterator[OpenAIServer]:
    with OpenAIServer(["local-model"], api_key="sk-test") as server:
        yield server


@pytest.fixture
def anthropic() -> Iterator[AnthropicServer]:
    with AnthropicServer(api_key="test-key") as server:
        yield server


@pytest.fixture
def telegram() -> Iterator[TelegramServer]:
    with TelegramServer("123456:SECRET") as server:
        yield server


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


def openai_post(server: OpenAIServer, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    headers = {"authorization": "Bearer sk-test"}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, **kwargs)


def anthropic_post(server: AnthropicServer, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    full = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": USER, **body}
    return httpx.post(f"{server.url}/v1/messages", json=full, headers=ANTHROPIC_HEADERS, **kwargs)


# ----- server harness ---------------------------------------------------------------------


def test_starts_fast_and_stops_fast_while_hanging() -> None:
    # bounds on this process's own time: its threads' wait for a CPU is the machine's load (tests/cpu_wait.py)
    waited, started = CpuWait(), time.monotonic()
    server = OllamaServer().start()
    assert time.monotonic() - started - waited.seconds() < 0.5
    server.set_default(Fault.hang_before_headers())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{server.url}/api/chat", json={"model": "m", "messages": USER}, timeout=10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    server.wait_for(lambda: server.in_flight == 3, timeout=2)
    waited, stopping = CpuWait(), time.monotonic()
    server.stop()
    assert time.monotonic() - stopping - waited.seconds() < 1.0
    for thread in threads:
        thread.join(2)
    assert len(errors) == 3
    assert all(isinstance(e, httpx.TransportError) for e in errors)


def test_restart_keeps_port_and_reset(ollama: OllamaServer) -> None:
    url = ollama.url
    httpx.post(f"{url}/api/chat", json={"model": "llama3.2:1b", "messages": USER})
    assert len(ollama.requests) == 1
    ollama.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/tags", timeout=1)
    ollama.start()
    assert ollama.url == url
    assert httpx.get(f"{url}/api/tags").status_code == 200
    ollama.push(Fault.status(500))
    ollama.reset()
    assert ollama.requests == [] and ollama.faults.pending == []


async def test_in_flight_counts_concurrent_requests_per_model(ollama: OllamaServer) -> None:
    ollama.push(Fault.delay(0.3), Fault.delay(0.3), Fault.delay(0.3))
    async with httpx.AsyncClient(base_url=ollama.url, timeout=5) as client:
        calls = [
            client.post("/api/chat", json={"model": model, "messages": USER, "stream": False})
            for model in ("llama3.2:1b", "llama3.2:1b", "qwen3:0.6b")
        ]
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert ollama.max_in_flight == 3
    assert ollama.max_in_flight_by_model == {"llama3.2:1b": 2, "qwen3:0.6b": 1}
    # the server's thread counts a request out just after its last byte left: the client may be first
    await apoll(lambda: ollama.in_flight == 0, timeout=5)
    ollama.reset_counters()
    assert ollama.max_in_flight == 0


def test_fault_script_order_default_and_strings(ollama: OllamaServer) -> None:
    ollama.push("status:503", Fault.ok())
    ollama.set_default("status:500")
    body = {"model": "llama3.2:1b", "messages": USER, "stream": False}
    codes = [httpx.post(f"{ollama.url}/api/chat", json=body).status_code for _ in range(3)]
    assert codes == [503, 200, 500]
    assert [r.fault.kind for r in ollama.requests] == [FaultKind.STATUS, FaultKind.OK, FaultKind.STATUS]


# ----- Ollama -----------------------------------------------------------------------------


def test_ollama_stream_shape(ollama: OllamaServer) -> None:
    response = httpx.post(f"{ollama.url}/api/chat", json={"model": "llama3.2:1b", "messages": USER})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(response.text)
    assert "".join(line["message"]["content"] for line in lines) == "Hello from the fake server."
    assert all(line["done"] is False for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_duration",
    ):
        assert isinstance(final[key], int)
    assert final["prompt_eval_count"] == 7
    assert final["eval_count"] == len(lines) - 1
    assert ollama.last_request.json["messages"] == USER


def test_ollama_non_stream_thinking_and_tools(ollama: OllamaServer) -> None:
    ollama.tool_arguments = {"city": "Paris"}
    body = {
        "model": "llama3.2:1b",
        "messages": USER,
        "stream": False,
        "think": True,
        "tools": [WEATHER_TOOL_OPENAI],
    }
    reply = httpx.post(f"{ollama.url}/api/chat", json=body).json()
    assert reply["done"] is True and reply["message"]["thinking"]
    call = reply["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "Paris"}
    follow_up = {
        **body,
        "messages": [*USER, {"role": "tool", "content": "sunny", "tool_name": "get_weather"}],
    }
    answer = httpx.post(f"{ollama.url}/api/chat", json=follow_up).json()
    assert (
        answer["message"]["content"] == "Hello from the fake server."
        and "tool_calls" not in answer["message"]
    )


def test_ollama_stream_thinking_precedes_content(ollama: OllamaServer) -> None:
    body = {"model": "llama3.2:1b", "messages": USER, "think": "high"}
    lines = ndjson(httpx.post(f"{ollama.url}/api/chat", json=body).text)
    kinds = ["thinking" if line["message"].get("thinking") else "content" for line in lines[:-1]]
    assert kinds == sorted(kinds, key=lambda k: k != "thinking") and kinds[0] == "thinking"


def test_ollama_preload_tags_ps_and_unknown_model(ollama: OllamaServer) -> None:
    preload = httpx.post(f"{ollama.url}/api/chat", json={"model": "qwen3:0.6b", "keep_alive": "30m"}).json()
    assert preload["done"] is True and preload["done_reason"] == "load"
    assert preload["message"] == {"role": "assistant", "content": ""}
    tags = httpx.get(f"{ollama.url}/api/tags").json()["models"]
    assert {m["name"] for m in tags} == {"llama3.2:1b", "qwen3:0.6b"}
    assert tags[1]["size"] == 522_000_000 and tags[0]["details"]["quantization_level"]
    ps = httpx.get(f"{ollama.url}/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["qwen3:0.6b"] and "expires_at" in ps[0] and "size_vram" in ps[0]
    unload = httpx.post(f"{ollama.url}/api/chat", json={"model": "qwen3:0.6b", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and ollama.loaded_models == []
    missing = httpx.post(f"{ollama.url}/api/chat", json={"model": "nope", "messages": USER})
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "nope" not found, try pulling it first'}


def test_ollama_generate(ollama: OllamaServer) -> None:
    preload = httpx.post(f"{ollama.url}/api/generate", json={"model": "llama3.2:1b"}).json()
    assert preload["done_reason"] == "load" and preload["response"] == ""
    lines = ndjson(
        httpx.post(f"{ollama.url}/api/generate", json={"model": "llama3.2:1b", "prompt": "hi"}).text
    )
    assert "".join(line["response"] for line in lines) == "Hello from the fake server."
    assert lines[-1]["done"] is True


def test_ollama_queue_full_503_and_error_midstream(ollama: OllamaServer) -> None:
    ollama.push(Fault.status(503), Fault.error_midstream())
    body = {"model": "llama3.2:1b", "messages": USER}
    busy = httpx.post(f"{ollama.url}/api/chat", json=body)
    assert busy.status_code == 503 and "maximum pending requests exceeded" in busy.json()["error"]
    broken = httpx.post(f"{ollama.url}/api/chat", json=body)
    assert broken.status_code == 200
    lines = ndjson(broken.text)
    assert lines[0]["message"]["content"] == "Hello"
    assert set(lines[-1]) == {"error"}


def test_ollama_invalid_json_line(ollama: OllamaServer) -> None:
    ollama.push(Fault.invalid_json())
    text = httpx.post(f"{ollama.url}/api/chat", json={"model": "llama3.2:1b", "messages": USER}).text
    with pytest.raises(json.JSONDecodeError):
        ndjson(text)


def test_ollama_tool_call_as_text(ollama: OllamaServer) -> None:
    ollama.push(Fault.tool_call_as_text())
    ollama.tool_arguments = {"city": "Paris"}
    body = {"model": "llama3.2:1b", "messages": USER, "stream": False, "tools": [WEATHER_TOOL_OPENAI]}
    message = httpx.post(f"{ollama.url}/api/chat", json=body).json()["message"]
    assert "tool_calls" not in message
    assert message["content"].startswith("```json\n")
    assert json.loads(message["content"].strip("`").removeprefix("json\n")) == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }


# ----- generic faults (exercised through Ollama and OpenAI) ------------------------------


def test_hang_before_headers_times_out_and_frees_slot(ollama: OllamaServer) -> None:
    ollama.push(Fault.hang_before_headers())
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{ollama.url}/api/chat", json={"model": "llama3.2:1b", "messages": USER}, timeout=0.3)
    ollama.wait_for(lambda: ollama.in_flight == 0, timeout=2)


def test_hang_after_first_token(openai: OpenAIServer) -> None:
    openai.push(Fault.hang_after_first_token())
    received: list[str] = []
    headers = {"authorization": "Bearer sk-test"}
    body = {"model": "local-model", "messages": USER, "stream": True}
    timeout = httpx.Timeout(5, read=0.4)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST", f"{openai.url}/v1/chat/completions", json=body, headers=headers, timeout=timeout
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line[6:])["choices"][0]["delta"].get("content") or "")
    assert "Hello" in received


def test_drip_is_slow_but_complete(ollama: OllamaServer) -> None:
    ollama.push(Fault.drip(0.05))
    started = time.monotonic()
    lines = ndjson(httpx.post(f"{ollama.url}/api/chat", json={"model": "llama3.2:1b", "messages": USER}).text)
    assert time.monotonic() - started >= 0.05 * (len(lines) - 1)
    assert lines[-1]["done"] is True


def test_delay_then_healthy(ollama: OllamaServer) -> None:
    ollama.push(Fault.delay(0.3))
    body = {"model": "llama3.2:1b", "messages": USER, "stream": False}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{ollama.url}/api/chat", json=body, timeout=0.1)
    ollama.push(Fault.delay(0.2))
    started = time.monotonic()
    assert httpx.post(f"{ollama.url}/api/chat", json=body).json()["done"] is True
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("stream", [True, False])
def test_drop_midstream_breaks_the_body(ollama: OllamaServer, stream: bool) -> None:
    ollama.push(Fault.drop_midstream())
    body = {"model": "llama3.2:1b", "messages": USER, "stream": stream}
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        httpx.stream("POST", f"{ollama.url}/api/chat", json=body, timeout=5) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_bytes():
            pass


# ----- OpenAI-compatible ------------------------------------------------------------------


def test_openai_non_stream_and_auth(openai: OpenAIServer) -> None:
    body = {"model": "local-model", "messages": USER}
    reply = openai_post(openai, body).json()
    assert reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello from the fake server."}
    assert choice["finish_reason"] == "stop"
    assert (
        reply["usage"]["total_tokens"]
        == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
    )
    denied = httpx.post(f"{openai.url}/v1/chat/completions", json=body)
    assert denied.status_code == 401
    assert set(denied.json()["error"]) == {"message", "type", "param", "code"}
    assert openai_post(openai, {**body, "model": "other"}).status_code == 404
    models = httpx.get(f"{openai.url}/v1/models", headers={"authorization": "Bearer sk-test"}).json()
    assert models["data"][0]["id"] == "local-model"


def test_openai_stream_text_usage_and_done(openai: OpenAIServer) -> None:
    body = {
        "model": "local-model",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = sse_events(openai_post(openai, body).text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the fake server."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_openai_stream_tool_call_fragments(openai: OpenAIServer) -> None:
    openai.tool_arguments = {"city": "Paris", "unit": "celsius"}
    body = {"model": "local-model", "messages": USER, "stream": True, "tools": [WEATHER_TOOL_OPENAI]}
    events = sse_events(openai_post(openai, body).text)
    chunks = [json.loads(data) for _, data in events[:-1]]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"] == {
        "name": "get_weather",
        "arguments": "",
    }
    assert len(calls) > 2 and all("id" not in c for c in calls[1:])
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_tool_result_gets_text_and_answer_tools_off(openai: OpenAIServer) -> None:
    orphan = [*USER, {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}]  # answers no call: as OpenAI
    assert openai_post(openai, {"model": "local-model", "messages": orphan}).status_code == 400
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    body = {"model": "local-model", "messages": messages, "tools": [WEATHER_TOOL_OPENAI]}
    assert (
        openai_post(openai, body).json()["choices"][0]["message"]["content"] == "Hello from the fake server."
    )
    openai.answer_tools = False
    reply = openai_post(openai, {**body, "messages": USER}).json()["choices"][0]
    assert reply["finish_reason"] == "stop" and "tool_calls" not in reply["message"]


def test_openai_status_error_and_midstream_error(openai: OpenAIServer) -> None:
    openai.push(Fault.status(429, retry_after=2), Fault.error_midstream(after_chunks=2))
    body = {"model": "local-model", "messages": USER, "stream": True}
    limited = openai_post(openai, body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    events = sse_events(openai_post(openai, body).text)
    assert "[DONE]" not in [data for _, data in events]
    last = json.loads(events[-1][1])
    assert set(last) == {"error"} and last["error"]["type"] == "server_error"


# ----- Anthropic --------------------------------------------------------------------------


def test_anthropic_validation(anthropic: AnthropicServer) -> None:
    url = f"{anthropic.url}/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": USER}
    no_key = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    wrong = httpx.post(url, json=body, headers={**ANTHROPIC_HEADERS, "x-api-key": "bad"})
    assert wrong.status_code == 401
    no_version = httpx.post(url, json=body, headers={"x-api-key": "test-key"})
    assert no_version.status_code == 400 and no_version.json()["error"]["type"] == "invalid_request_error"
    no_max = httpx.post(url, json={"model": "m", "messages": USER}, headers=ANTHROPIC_HEADERS)
    assert no_max.status_code == 400 and "max_tokens" in no_max.json()["error"]["message"]
    assert anthropic.faults.pending == [] and anthropic.in_flight == 0


def test_anthropic_accepts_what_the_real_api_accepts(anthropic: AnthropicServer) -> None:
    """x-api-key, or the key / an OAuth-style token as a bearer token, as api.anthropic.com takes them."""
    url = f"{anthropic.url}/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": USER}
    version = {"anthropic-version": "2023-06-01"}
    assert httpx.post(url, json=body, headers={**version, "x-api-key": "test-key"}).status_code == 200
    assert httpx.post(url, json=body, headers={**version, "authorization": "Bearer test-key"}).status_code == 200
    assert httpx.post(url, json=body, headers={**version, "authorization": "Bearer bad"}).status_code == 401
    assert httpx.post(url, json=body, headers={**version, "authorization": "Basic test-key"}).status_code == 401


def test_anthropic_official_sdk_as_it_is_today(anthropic: AnthropicServer) -> None:
    """The current official SDK (its api_key travels as a bearer token) and its auth_token option."""
    sdk = anthropic_sdk
    # each client closed here: an SDK client sits in reference cycles, so one left open is freed by the collector,
    # whenever it next runs a full pass, and its socket could be finalized before the client's __del__ closed it — a
    # ResourceWarning in whichever later test that was (tests/frontends, in the clean-clone CI)
    for made in (lambda: sdk.Anthropic(api_key="test-key", base_url=anthropic.url, max_retries=0),
                 lambda: sdk.Anthropic(auth_token="test-key", base_url=anthropic.url, max_retries=0)):
        with made() as client:
            reply = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)
            assert reply.content[0].text == "Hello from the fake server." and reply.stop_reason == "end_turn"
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=USER) as stream:
                assert "".join(stream.text_stream) == "Hello from the fake server."
    with sdk.Anthropic(api_key="wrong", base_url=anthropic.url, max_retries=0) as client, \
            pytest.raises(sdk.AuthenticationError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)


def test_the_anthropic_sdk_test_leaves_no_socket_to_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above, the collector held off: every socket it made is closed when it returns. It left its three
    clients to the collector, whose full pass came minutes later, in another test; their sockets finalized before the
    clients' __del__ closed them were 'unclosed <socket.socket ... proto=6, laddr=(127.0.0.1, …)>' failing
    tests/frontends tests (test_telegram_forward_batch, test_telegram_lost_replies) in the clean-clone CI."""
    made: list[weakref.ref[socket.socket]] = []
    init = socket.socket.__init__

    def tracked(self: socket.socket, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(socket.socket, "__init__", tracked)
    gc.disable()
    try:
        with AnthropicServer(api_key="test-key") as server:
            test_anthropic_official_sdk_as_it_is_today(server)
        left = [s for ref in made if (s := ref()) is not None and s.fileno() != -1]
        for sock in left:  # not to the collector
            sock.close()
    finally:
        gc.enable()
    assert not left, left


def test_anthropic_non_stream_text_thinking_tool(anthropic: AnthropicServer) -> None:
    reply = anthropic_post(anthropic, {}).json()
    assert reply["type"] == "message" and reply["role"] == "assistant" and reply["stop_reason"] == "end_turn"
    assert reply["content"] == [{"type": "text", "text": "Hello from the fake server."}]
    assert reply["stop_sequence"] is None and reply["usage"]["output_tokens"] == 5
    anthropic.tool_arguments = {"city": "Paris"}
    thinking = {"type": "enabled", "budget_tokens": 1024}
    # max_tokens above the budget: the API (and now the fake) refuses a budget not below max_tokens
    reply = anthropic_post(anthropic, {"tools": [WEATHER_TOOL_ANTHROPIC], "thinking": thinking,
                                       "max_tokens": 2048}).json()
    assert [block["type"] for block in reply["content"]] == ["thinking", "tool_use"]
    assert reply["content"][0]["signature"] and reply["stop_reason"] == "tool_use"
    tool_use = reply["content"][1]
    assert tool_use["id"].startswith("toolu_") and tool_use["input"] == {"city": "Paris"}
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "9C"}],
    }
    messages = [*USER, {"role": "assistant", "content": reply["content"]}, result]
    final = anthropic_post(anthropic, {"tools": [WEATHER_TOOL_ANTHROPIC], "messages": messages}).json()
    assert final["content"][0]["type"] == "text" and final["stop_reason"] == "end_turn"


def test_anthropic_stream_event_order(anthropic: AnthropicServer) -> None:
    anthropic.inject_unknown_event = True
    thinking = {"type": "enabled", "budget_tokens": 1024}
    events = sse_events(anthropic_post(anthropic, {"stream": True, "thinking": thinking, "max_tokens": 2048}).text)
    names = [name for name, _ in events]
    payloads = [json.loads(data) for _, data in events]
    assert all(p["type"] == name for name, p in zip(names, payloads, strict=True))
    assert names[:3] == ["message_start", "ping", "fake_unknown_event"]
    assert names[-2:] == ["message_delta", "message_stop"]
    start = payloads[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and "input_tokens" in start["usage"]
    blocks = [p for p in payloads if p["type"] == "content_block_start"]
    assert [b["content_block"]["type"] for b in blocks] == ["thinking", "text"]
    deltas = [p["delta"]["type"] for p in payloads if p["type"] == "content_block_delta"]
    assert deltas[0] == "thinking_delta" and "signature_delta" in deltas and deltas[-1] == "text_delta"
    text = "".join(p["delta"].get("text", "") for p in payloads if p["type"] == "content_block_delta")
    assert text == "Hello from the fake server."
    message_delta = payloads[-2]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert message_delta["usage"]["output_tokens"] > 0


def test_anthropic_stream_tool_use_partial_json(anthropic: AnthropicServer) -> None:
    anthropic.tool_arguments = {"city": "Paris", "days": 3}
    events = sse_events(anthropic_post(anthropic, {"stream": True, "tools": [WEATHER_TOOL_ANTHROPIC]}).text)
    payloads = [json.loads(data) for _, data in events]
    start = next(p for p in payloads if p["type"] == "content_block_start")["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "get_weather" and start["input"] == {}
    fragments = [p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta"]
    assert len(fragments) > 1 and json.loads("".join(fragments)) == {"city": "Paris", "days": 3}
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_529_overloaded_and_429_retry_after(anthropic: AnthropicServer) -> None:
    anthropic.push(Fault.status(529), Fault.status(429, retry_after=7))
    overloaded = anthropic_post(anthropic, {})
    assert overloaded.status_code == 529
    body = overloaded.json()
    assert (
        body["type"] == "error" and body["error"]["type"] == "overloaded_error" and body["error"]["message"]
    )
    limited = anthropic_post(anthropic, {})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_anthropic_error_event_midstream(anthropic: AnthropicServer) -> None:
    anthropic.push(Fault.error_midstream())
    events = sse_events(anthropic_post(anthropic, {"stream": True}).text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and "message_stop" not in names
    assert json.loads(events[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    anthropic.push(Fault.error_midstream())
    assert anthropic_post(anthropic, {}).status_code == 529


def test_anthropic_max_tokens_truncates(anthropic: AnthropicServer) -> None:
    reply = anthropic_post(anthropic, {"max_tokens": 2}).json()
    assert reply["stop_reason"] == "max_tokens" and reply["content"][0]["text"] == "Hello from"


# ----- Telegram ---------------------------------------------------------------------------


def tg(server: TelegramServer, method: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{server.api_url}/{method}", json=params, timeout=5)


def test_telegram_auth_unknown_method_and_get_me(telegram: TelegramServer) -> None:
    bad = httpx.get(f"{telegram.base_url}999:WRONG/getMe")
    assert bad.status_code == 401 and bad.json() == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }
    unknown = tg(telegram, "flyToTheMoon")
    assert unknown.status_code == 404 and unknown.json()["description"] == "Not Found"
    me = httpx.get(f"{telegram.api_url}/getme").json()
    assert me["ok"] is True and me["result"]["id"] == 123456 and me["result"]["is_bot"] is True
    assert tg(telegram, "deleteWebhook", drop_pending_updates=False).json() == {"ok": True, "result": True}


def test_telegram_long_poll_and_offset(telegram: TelegramServer) -> None:
    started = time.monotonic()
    empty = tg(telegram, "getUpdates", timeout=0.3).json()
    assert empty == {"ok": True, "result": []} and time.monotonic() - started >= 0.3
    timer = threading.Timer(0.2, lambda: telegram.push_message(42, 42, "/start hello"))
    timer.start()
    started = time.monotonic()
    updates = tg(telegram, "getUpdates", timeout=5).json()["result"]
    assert 0.15 < time.monotonic() - started < 2
    message = updates[0]["message"]
    assert message["text"] == "/start hello" and message["from"] == {
        "id": 42,
        "is_bot": False,
        "first_name": "Tester",
        "language_code": "en",
    }
    assert message["chat"]["type"] == "private" and message["entities"][0]["type"] == "bot_command"
    again = tg(telegram, "getUpdates", timeout=0).json()["result"]
    assert [u["update_id"] for u in again] == [updates[0]["update_id"]]
    telegram.push_message(42, 42, "second")
    confirmed = tg(telegram, "getUpdates", offset=updates[0]["update_id"] + 1, timeout=0).json()["result"]
    assert [u["message"]["text"] for u in confirmed] == ["second"]


def test_telegram_form_encoded_send_edit_and_callback(telegram: TelegramServer) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Retry", "callback_data": "retry:1"}]]}
    form = {"chat_id": "42", "text": "Thinking", "reply_markup": json.dumps(keyboard)}
    sent = httpx.post(f"{telegram.api_url}/sendMessage", data=form).json()["result"]
    assert sent["chat"]["id"] == 42 and sent["from"]["is_bot"] is True and sent["reply_markup"] == keyboard
    edit = tg(telegram, "editMessageText", chat_id=42, message_id=sent["message_id"], text="Done")
    assert edit.json()["result"]["text"] == "Done" and "edit_date" in edit.json()["result"]
    same = tg(telegram, "editMessageText", chat_id=42, message_id=sent["message_id"], text="Done")
    assert same.status_code == 400 and "message is not modified" in same.json()["description"]
    assert [(c.method, c.text) for c in telegram.sent] == [
        ("sendMessage", "Thinking"),
        ("editMessageText", "Done"),
    ]
    update = telegram.push_callback(42, sent["message_id"], 42, "retry:1")
    query = tg(telegram, "getUpdates").json()["result"][0]["callback_query"]
    assert query == update["callback_query"] and query["data"] == "retry:1" and query["chat_instance"]
    assert query["message"]["message_id"] == sent["message_id"]
    assert tg(telegram, "answerCallbackQuery", callback_query_id=query["id"]).json()["result"] is True
    assert tg(telegram, "answerCallbackQuery", callback_query_id=query["id"]).status_code == 400
    assert tg(telegram, "sendChatAction", chat_id=42, action="typing").json()["result"] is True


def test_telegram_commands_and_rate_limit_fault(telegram: TelegramServer) -> None:
    commands = [{"command": "start", "description": "Start"}]
    assert httpx.post(f"{telegram.api_url}/setMyCommands", data={"commands": json.dumps(commands)}).json()[
        "ok"
    ]
    assert tg(telegram, "getMyCommands").json()["result"] == commands
    telegram.push(Fault.status(429, retry_after=3))
    limited = tg(telegram, "sendMessage", chat_id=1, text="hi")
    assert limited.status_code == 429
    assert (
        limited.json()["parameters"] == {"retry_after": 3}
        and "retry after 3" in limited.json()["description"]
    )
    assert telegram.sent == [] and telegram.calls_to("sendMessage")[0].ok is False
    tg(telegram, "sendMessage", chat_id=1, text="hi")
    telegram.wait_for(lambda: len(telegram.sent) == 1, timeout=1)


def test_telegram_chat_members_group_upgrade_and_flood_control(telegram: TelegramServer) -> None:
    """Shapes from core.telegram.org/bots/api: ChatMember by status (#getchatmember), a group's upgrade (Message
    migrate_to_chat_id / migrate_from_chat_id, ResponseParameters.migrate_to_chat_id), 429 with retry_after."""
    telegram.chat_admins[-5] = {7: "creator", 8: "administrator"}
    statuses = [tg(telegram, "getChatMember", chat_id=-5, user_id=u).json()["result"] for u in (7, 8, 9)]
    assert [m["status"] for m in statuses] == ["creator", "administrator", "member"]
    assert statuses[1]["can_delete_messages"] is True and statuses[2]["user"]["id"] == 9
    telegram.upgrade_group(-5, -1_005, 7)
    service = [u["message"] for u in tg(telegram, "getUpdates", timeout=0).json()["result"]]
    assert [(m["chat"]["id"], m.get("migrate_to_chat_id"), m.get("migrate_from_chat_id")) for m in service] == [
        (-5, -1_005, None), (-1_005, None, -5)]
    refused = tg(telegram, "sendMessage", chat_id=-5, text="hi").json()
    assert refused["error_code"] == 400 and refused["parameters"] == {"migrate_to_chat_id": -1_005}
    telegram.flood(1.5)
    flooded = tg(telegram, "sendMessage", chat_id=-1_005, text="hi").json()
    assert flooded["error_code"] == 429 and flooded["parameters"]["retry_after"] == 2
    assert flooded["description"] == "Too Many Requests: retry after 2"


def test_telegram_second_poller_conflicts(telegram: TelegramServer) -> None:
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(tg(telegram, "getUpdates", timeout=3)))
    first.start()
    telegram.wait_for(lambda: telegram.calls_to("getUpdates") or telegram.requests, timeout=1)
    time.sleep(0.1)
    assert tg(telegram, "getUpdates", timeout=0).json()["ok"] is True
    first.join(3)
    assert results[0].status_code == 409


async def test_anthropic_hang_after_first_token_async(anthropic: AnthropicServer) -> None:
    anthropic.push(Fault.hang_after_first_token())
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "stream": True}
    names: list[str] = []
    timeout = httpx.Timeout(5, read=0.3)
    async with httpx.AsyncClient(
        base_url=anthropic.url, headers=ANTHROPIC_HEADERS, timeout=timeout
    ) as client:
        with pytest.raises(httpx.ReadTimeout):
            async with client.stream("POST", "/v1/messages", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        names.append(line[7:])
        assert await anthropic.wait_for_async(lambda: anthropic.in_flight == 0, timeout=2)
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta"]


def test_tool_preamble_and_multipart_telegram(openai: OpenAIServer, telegram: TelegramServer) -> None:
    openai.tool_preamble = "Let me check."
    body = {"model": "local-model", "messages": USER, "tools": [WEATHER_TOOL_OPENAI]}
    message = openai_post(openai, body).json()["choices"][0]["message"]
    assert message["content"] == "Let me check." and message["tool_calls"][0]["function"]["arguments"] == "{}"
    files = {"document": ("a.txt", b"data")}
    sent = httpx.post(f"{telegram.api_url}/sendMessage", data={"chat_id": "7", "text": "123"}, files=files)
    assert sent.json()["result"]["text"] == "123" and telegram.sent[0].params["chat_id"] == 7
