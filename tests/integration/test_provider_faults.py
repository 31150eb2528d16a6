"""Every provider against a local server speaking its wire protocol, healthy and misbehaving.

Each fault must end in a fallback answer (or a clear error), within its time bounds, with the
reason in the routing log and nothing lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import AnthropicServer, Fault, OllamaServer, OpenAIServer
from tests.helpers import make_config

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolDefinition

KEY = "sk-ant-test-abcdefghijklmnopqrstuvwxyz"
REQ = ChatRequest(messages=[Message("user", "Say hello")])
WEATHER = ToolDefinition("get_weather", "Weather for a city",
                         {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    ollama = OllamaServer(models=["qwen3.5:latest"], tool_arguments={"city": "Paris"}).start()
    openai = OpenAIServer(models=["local"], tool_arguments={"city": "Paris"}).start()
    anthropic = AnthropicServer(api_key=KEY, tool_arguments={"city": "Paris"}).start()
    backup = OpenAIServer(models=["backup"], reply_text="backup answer").start()
    yield {"ollama": ollama, "openai": openai, "anthropic": anthropic, "backup": backup}
    for s in (ollama, openai, anthropic, backup):
        s.stop()


@pytest.fixture(autouse=True)
def _reset(servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for s in servers.values():
        s.reset()
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", KEY)


def model_entry(kind: str, servers: dict[str, Any]) -> dict[str, Any]:
    if kind == "ollama":
        return {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": servers["ollama"].url,
                "keep_alive": "30m"}
    if kind == "openai":
        return {"provider": "openai", "model": "local", "endpoint": servers["openai"].url}
    return {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": servers["anthropic"].url,
            "api_key_env": "TEST_ANTHROPIC_KEY", "price": {"input": 1.0, "output": 5.0}}


# Where nothing misbehaves, no time bound is under test: the fault tests' sub-second bounds ran out on a healthy fake
# under load ~10 (test_healthy_stream_text_and_usage fell back to the backup 1 run in 3, on main as before), so the
# tests of healthy answers give the primary patient bounds and still see every wrong answer or lost field.
PATIENT = {"first_token": 8, "idle": 8}  # within the total of 10


def router_for(kind: str, servers: dict[str, Any], log: Path | None = None, retries: int = 0,
               healthy: bool = False) -> Router:
    primary = model_entry(kind, servers)
    if healthy:
        primary["timeouts"] = PATIENT
    config = make_config(
        {"primary": primary,
         # the healthy backup gets a first-token bound of its own: the primary's faults are what is timed here, and
         # under CI's load a 0.5 s bound once ran out on the backup too (05:02, drop_midstream-openai)
         "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url,
                    "timeouts": {"first_token": 5}}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 0.5, "idle": 0.3, "total": 10},
                  "retries": {"attempts": retries, "backoff": 0.01, "max_wait": 1.5},
                  "cooldown": {"failures": 3, "seconds": 1, "max_seconds": 5}},
    )
    writer = LogWriter(log, local_models=["backup"]) if log else None
    router = Router(config, sink=writer.submit if writer else None)
    router._test_writer = writer  # type: ignore[attr-defined]
    return router


KINDS = ["ollama", "openai", "anthropic"]


@pytest.mark.parametrize("kind", KINDS)
async def test_healthy_stream_text_and_usage(kind: str, servers: dict[str, Any]) -> None:
    router = router_for(kind, servers, healthy=True)
    stream = router.stream("agent", REQ)
    pieces = [c.text async for c in stream if c.kind == "text"]
    assert len(pieces) > 1 and "".join(pieces) == "Hello from the fake server."
    assert stream.record.outcome == "ok" and stream.record.tokens_out > 0 and stream.record.tokens_in > 0
    if kind == "anthropic":
        assert stream.record.cost_usd > 0
        sent = servers["anthropic"].last_request
        assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    await router.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_structured_tool_call(kind: str, servers: dict[str, Any]) -> None:
    router = router_for(kind, servers, healthy=True)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Weather in Paris?")],
                                                        tools=[WEATHER]))
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", {"city": "Paris"})]
    await router.aclose()


@pytest.mark.parametrize("kind", ["ollama", "anthropic"])
async def test_thinking_is_separated_from_the_answer(kind: str, servers: dict[str, Any]) -> None:
    router = router_for(kind, servers, healthy=True)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Think, then answer")],
                                                        thinking=True, thinking_budget=2000))
    assert routed.response.thinking and routed.response.thinking not in routed.response.text
    body = servers[kind].last_request.json
    if kind == "ollama":
        assert body["think"] is True and body["keep_alive"] == "30m"
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
        assert body["max_tokens"] > 2000
    await router.aclose()


FAULTS: list[tuple[Fault, set[str]]] = [
    (Fault.hang_before_headers(), {"first_token_timeout"}),
    (Fault.hang_after_first_token(), {"idle_timeout"}),
    (Fault.drip(0.4), {"idle_timeout", "first_token_timeout"}),  # too slow either way
    (Fault.status(429, retry_after=30), {"rate_limited"}),
    (Fault.status(500), {"server_error"}),
    (Fault.status(502), {"server_error"}),
    (Fault.status(503), {"overloaded", "queue_full"}),  # Ollama's 503 is its full queue (test_ollama_under_load.py)
    (Fault.status(529), {"overloaded"}),
    (Fault.status(401), {"auth_error"}),
    (Fault.error_midstream(), {"stream_error", "overloaded"}),
    (Fault.drop_midstream(), {"connection_dropped"}),
    (Fault.invalid_json(), {"malformed_response"}),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("fault", "reasons"), FAULTS, ids=[f"{f.kind}{f.code or ''}" for f, _ in FAULTS])
async def test_fault_falls_back_and_is_logged(kind: str, fault: Fault, reasons: set[str],
                                              servers: dict[str, Any], tmp_path: Path) -> None:
    servers[kind].push(fault)
    router = router_for(kind, servers, log=tmp_path / "log.sqlite3")
    start = time.perf_counter()
    routed = await router.complete("agent", REQ)
    elapsed = time.perf_counter() - start
    assert routed.response.text == "backup answer"
    assert routed.record.outcome == "fallback" and routed.record.model == "backup"
    first = routed.record.attempts[0]
    assert first.outcome == "fallback" and first.reason in reasons, first.describe()
    assert elapsed < 3.0  # the primary's first_token 0.5 / idle 0.3 bounds fired (its total is 10 s), plus the fallback
    await router.aclose()
    router._test_writer.close()  # type: ignore[attr-defined]
    rows = connect(tmp_path / "log.sqlite3").execute(
        "SELECT a.model, a.outcome, a.reason FROM attempts a ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [("primary", "fallback", first.reason), ("backup", "ok", None)]
    if fault.code == 429:
        assert router.pool.local("primary").health.state == "cooling_down"  # retry-after 30 cools just this model
        assert router.pool.local("backup").health.state == "available"


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_with_backoff_before_falling_back(kind: str, servers: dict[str, Any]) -> None:
    servers[kind].push(Fault.status(529, retry_after=0.2))
    router = router_for(kind, servers, retries=1)
    start = time.perf_counter()
    routed = await router.complete("agent", REQ)
    assert routed.record.model == "primary"
    assert [a.outcome for a in routed.record.attempts] == ["retry", "ok"]
    assert time.perf_counter() - start >= 0.2  # honoured retry-after
    await router.aclose()


async def test_missing_anthropic_key_is_unavailable_not_a_crash(servers: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_ANTHROPIC_KEY")
    router = router_for("anthropic", servers)
    routed = await router.complete("agent", REQ)
    assert routed.record.attempts[0].reason == "missing_credentials"
    assert servers["anthropic"].requests == []
    await router.aclose()


async def test_unknown_ollama_model_is_a_clear_error(servers: dict[str, Any]) -> None:
    config = make_config({"m": {"provider": "ollama", "model": "nope:1b", "endpoint": servers["ollama"].url}},
                         {"agent": {"primary": "m"}})
    router = Router(config)
    with pytest.raises(Exception, match="nope:1b") as info:
        await router.complete("agent", REQ)
    assert info.value.record.attempts[0].reason == "model_missing"  # type: ignore[attr-defined]
    # not pulled: a fact of the setup, not a sickness — not cooled for every request, but skipped a while without
    # asking, then asked again (it may be pulled meanwhile: providers/absence.py)
    assert router.pool.local("m").health.state == "available"
    asked = len(servers["ollama"].requests_to("/api/chat"))
    with pytest.raises(Exception, match="ollama pull nope:1b") as again:
        await router.complete("agent", REQ)
    assert again.value.record.attempts[0].outcome == "skipped"  # type: ignore[attr-defined]
    assert len(servers["ollama"].requests_to("/api/chat")) == asked
    await router.aclose()


async def test_connection_refused(servers: dict[str, Any]) -> None:
    config = make_config({"dead": {"provider": "ollama", "endpoint": "http://127.0.0.1:9"},
                          "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url}},
                         {"agent": {"primary": "dead", "fallbacks": ["backup"]}},
                         defaults={"retries": {"attempts": 0}})
    router = Router(config)
    routed = await router.complete("agent", REQ)
    assert routed.record.attempts[0].reason == "connect_error" and routed.record.model == "backup"
    # why, and what to check: it said only 'cannot reach http://127.0.0.1:9: ClientConnectorError'
    assert "http://127.0.0.1:9: connection refused (is the server running?" in routed.record.attempts[0].detail
    await router.aclose()


def test_a_connection_that_broke_is_not_called_unreachable() -> None:
    """A llama_cpp.server that closed the connection after a failed stream: the retry on it read 'cannot reach
    http://127.0.0.1:8080: ClientOSError' beside a server that was up."""
    import aiohttp

    from modelyard.providers.http import unreachable

    url = "http://127.0.0.1:8080"
    assert unreachable(url, aiohttp.ClientOSError(104, "Connection reset by peer")) == \
        "the connection to http://127.0.0.1:8080 broke: Connection reset by peer"
    assert unreachable(url, aiohttp.ServerDisconnectedError()) == \
        "http://127.0.0.1:8080 closed the connection without answering"


@pytest.mark.parametrize("kind", KINDS)
async def test_no_reader_is_left_to_the_garbage_collector(kind: str, servers: dict[str, Any]) -> None:
    """Each reader of a response is closed when its answer ends: one left suspended (the provider
    stops at [DONE]) is finalised by the event loop through a thread-safe wake-up and a task, per
    request (issue #15: two per gateway request)."""
    import asyncio
    import gc
    import sys

    loop = asyncio.get_running_loop()
    left: list[str] = []

    def finalizer(agen: Any) -> None:
        left.append(agen.__qualname__)
        loop._asyncgen_finalizer_hook(agen)  # type: ignore[attr-defined]

    router = router_for(kind, servers)
    await router.complete("agent", REQ)  # the first one opens the connection
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        for _ in range(3):
            routed = await router.complete("agent", REQ)
            assert routed.record.outcome == "ok"
            stream = router.stream("agent", REQ)
            assert [c async for c in stream]
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(*hooks)
        await router.aclose()  # its HTTP session: left to the collector, a ResourceWarning in a later test
    assert left == []


async def test_a_connection_the_server_is_closing_for_idleness_is_not_reused() -> None:
    """A server closes connections idle for 5 s (uvicorn, llama.cpp's server, Node.js): a request sent
    on one just as it closes fails. The pool drops idle connections before that (providers/http.py
    POOL_IDLE); this server closes, unanswered, any connection that was idle longer than POOL_IDLE."""
    import asyncio

    from modelyard.config.schema import ModelConfig, Timeouts
    from modelyard.providers.http import POOL_IDLE
    from modelyard.providers.openai import OpenAIProvider

    events = [{"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    loop = asyncio.get_running_loop()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle_since = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if idle_since is not None and loop.time() - idle_since > POOL_IDLE:
                    return  # the server's idle timer fired as this request arrived
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
                idle_since = loop.time()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = OpenAIProvider("m", ModelConfig(provider="openai", endpoint=f"http://127.0.0.1:{port}"))
    try:
        assert (await provider.complete(REQ, Timeouts())).text == "hi"
        await asyncio.sleep(POOL_IDLE + 0.5)
        assert (await provider.complete(REQ, Timeouts())).text == "hi"
    finally:
        await provider.aclose()
        server.close()
