"""Every backend fault of issue 5, through the HTTP gateway (not just the router).

For each fault: the client gets a fallback answer or a clear OpenAI-shaped error within the
configured bounds, the routing log holds every attempt with its reason, and the failing model
serves again once it is healthy. The router-level matrix per provider is
tests/integration/test_provider_faults.py; this file proves the same holds at the HTTP edge.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.cpu_wait import CpuWait
from tests.fakes import Fault, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.reliability.kit import (
    ANTHROPIC_ENV,
    ANTHROPIC_KEY,
    TIGHT,
    attempts_of,
    backends,
    gateway_config,
    is_openai_error,
)

COOLDOWN = {"failures": 50, "seconds": 0.4, "max_seconds": 0.8}
#: first_token (0.5) or idle (0.3) bound of the failing attempt, the backup's own answer, and slack for 2 cores; held
#: against the request's time less what this process's threads (gateway, fakes, client) waited for a CPU meanwhile
#: (tests/cpu_wait.py): pinned to one core at load ~15, 12 of 22 cases took 2.03-2.85 s of plain wall time
BOUND = TIGHT["first_token"] + 1.5
#: the healthy backup's own bounds: the primary's faults are what is timed here, not the backup's first token, which
#: is bounded by the request's total only. With the primary's 0.5 s it ran out in a long loaded run (503 where the
#: backup was up: hang_after_first_token-json); its first token took 427 ms at load ~2.5 in 40 runs (median ~10 ms).
#: The same as test_provider_faults.py's backup (05:02, drop_midstream-openai)
HEALTHY_BACKUP = {"timeouts": {"first_token": TIGHT["total"], "idle": TIGHT["total"]}}

FAULTS: list[tuple[str, Fault, set[str]]] = [
    ("hang_before_headers", Fault.hang_before_headers(), {"first_token_timeout"}),
    ("hang_after_first_token", Fault.hang_after_first_token(), {"idle_timeout"}),
    ("drip_1s", Fault.drip(1.0), {"idle_timeout", "first_token_timeout"}),
    ("429_retry_after", Fault.status(429, retry_after=0.3), {"rate_limited"}),
    ("500", Fault.status(500), {"server_error"}),
    ("502", Fault.status(502), {"server_error"}),
    ("503", Fault.status(503), {"overloaded"}),
    ("529", Fault.status(529), {"overloaded"}),
    ("401_revoked", Fault.status(401), {"auth_error"}),
    ("error_midstream", Fault.error_midstream(), {"stream_error", "overloaded", "server_error"}),
    ("reset_midstream", Fault.drop_midstream(), {"connection_dropped"}),
    ("invalid_json", Fault.invalid_json(), {"malformed_response"}),
]


@pytest.fixture(scope="module")
def fakes():
    with backends() as servers:
        yield servers


@pytest.fixture
def gateway(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    for server in fakes:
        server.reset()
    oa, ol, an = fakes
    with GatewayServer(gateway_config(tmp_path, oa.url, ol.url, an.url, cooldown=COOLDOWN,
                                      model_overrides={"backup": HEALTHY_BACKUP})) as gw:
        yield gw


def ask(gw: GatewayServer, model: str = "coder", *, stream: bool = False, **extra) -> tuple[httpx.Response, str]:
    """One request; returns the response and, for streams, the concatenated text."""
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}], **extra}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
    if not stream or r.status_code != 200:
        return r, (r.json()["choices"][0]["message"]["content"] or "") if r.status_code == 200 else ""
    text = ""
    for line in r.text.splitlines():
        if line.startswith("data: {") and '"choices"' in line:
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return r, text


def stream_error(r: httpx.Response) -> dict | None:
    """The OpenAI-shaped error event that ended a stream, if any."""
    for line in r.text.splitlines():
        if line.startswith("data: {") and '"error"' in line:
            return json.loads(line[6:])
    return None


def recovered(gw: GatewayServer, model: str = "fast", agent: str = "coder") -> None:
    """The failing model answers again once healthy (after its cooldown, if one opened)."""
    deadline = time.monotonic() + 3
    while True:
        r, _ = ask(gw, agent)
        if r.status_code == 200 and r.headers["x-modelyard-model"] == model:
            return
        assert time.monotonic() < deadline, f"{model} never came back: {r.headers.get('x-modelyard-route')}"
        time.sleep(0.1)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("name", "fault", "reasons"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_through_the_gateway(gateway, fakes, name, fault, reasons, stream):
    oa = fakes[0]
    oa.push(fault)
    waited, start = CpuWait(), time.perf_counter()
    r, text = ask(gateway, stream=stream)
    elapsed = time.perf_counter() - start - waited.seconds()
    assert elapsed < BOUND, f"{name} took {elapsed:.2f}s besides waiting for a CPU"
    rid = r.headers["x-modelyard-request-id"]
    gateway.wait_for(lambda: attempts_of(gateway.runtime.log_path, rid))
    attempts = attempts_of(gateway.runtime.log_path, rid)
    assert attempts[0][0] == "fast" and attempts[0][2] in reasons, attempts
    assert r.status_code == 200
    error = stream_error(r) if stream else None
    if error is None:  # a fallback answer, and the headers say why
        assert r.headers["x-modelyard-model"] == "backup" and text == "Hello from backup."
        assert attempts == [("fast", "fallback", attempts[0][2]), ("backup", "ok", None)]
        assert f"fast fallback {attempts[0][2]}" in r.headers["x-modelyard-route"]
    else:  # committed to fast, then it broke: the stream ends in a clear error instead of [DONE]
        assert stream and is_openai_error(error) and error["error"]["code"] == "stream_interrupted"
        assert "data: [DONE]" not in r.text
        assert attempts == [("fast", "interrupted", attempts[0][2])] or attempts[-1][1] == "interrupted"
    recovered(gateway)
    pool = gateway.router.pool
    assert pool.local("fast").slots.in_flight == 0 and pool.local("backup").slots.in_flight == 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_chain_exhausted_is_a_clear_503_within_bounds(gateway, fakes, stream):
    oa, ol, _ = fakes
    oa.push(Fault.hang_before_headers())
    ol.push(Fault.status(529))
    waited, start = CpuWait(), time.perf_counter()
    r, _ = ask(gateway, stream=stream)
    assert time.perf_counter() - start - waited.seconds() < BOUND
    assert r.status_code == 503 and is_openai_error(r.json())
    err = r.json()["error"]
    assert err["code"] == "chain_exhausted"
    assert [(a["model"], a["reason"]) for a in err["attempts"]] == [("fast", "first_token_timeout"),
                                                                    ("backup", "overloaded")]
    rid = r.headers["x-modelyard-request-id"]
    assert [a[2] for a in attempts_of(gateway.runtime.log_path, rid)] == ["first_token_timeout", "overloaded"]
    recovered(gateway)
    recovered(gateway, "backup", "model:backup")


def test_tool_call_written_as_text_is_not_passed_off_as_an_answer(gateway, fakes):
    """The tool-calling trap at the HTTP edge: a text-written call from a model without
    ``tool_text_fallback`` is an unusable reply and falls back to a model that makes a real call."""
    oa = fakes[0]
    oa.push(Fault.tool_call_as_text())
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    r, _ = ask(gateway, tools=tools)
    assert r.status_code == 200
    message = r.json()["choices"][0]["message"]
    assert message["tool_calls"] and message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert r.headers["x-modelyard-model"] == "backup"
    rid = r.headers["x-modelyard-request-id"]
    assert attempts_of(gateway.runtime.log_path, rid) == [("fast", "fallback", "unusable_reply"),
                                                          ("backup", "ok", None)]


def test_tool_call_written_as_text_becomes_a_real_call_when_configured(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    oa, ol, an = fakes
    for s in fakes:
        s.reset()
    config = gateway_config(tmp_path, oa.url, ol.url, an.url, model_overrides={"fast": {"tool_text_fallback": True}})
    oa.push(Fault.tool_call_as_text())
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with GatewayServer(config) as gw:
        r, _ = ask(gw, tools=tools)
    assert r.status_code == 200 and r.headers["x-modelyard-model"] == "fast"
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"])


def test_backend_killed_and_restarted_mid_run(tmp_path, fakes, monkeypatch):
    """The primary's server process goes away while requests stream from it, then comes back."""
    monkeypatch.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    _, ol, an = fakes
    for s in fakes:
        s.reset()
    with OpenAIServer(models=["fast-model"], reply_text="Hello from fast.") as primary:
        config = gateway_config(tmp_path, primary.url, ol.url, an.url, cooldown={"failures": 1, "seconds": 0.5,
                                                                                  "max_seconds": 1})
        with GatewayServer(config) as gw:
            assert ask(gw)[0].headers["x-modelyard-model"] == "fast"
            primary.set_default(Fault.drip(0.1))  # slow enough to be mid-answer when it dies
            results: list[httpx.Response] = []
            threads = [threading.Thread(target=lambda s=s: results.append(ask(gw, stream=s)[0])) for s in (False, True)]
            for t in threads:
                t.start()
            primary.wait_for(lambda: primary.in_flight == 2)
            time.sleep(0.15)
            primary.stop()  # every open connection is aborted, like a killed process
            for t in threads:
                t.join(10)
            assert len(results) == 2
            for r in results:
                assert r.status_code == 200
                attempts = attempts_of(gw.runtime.log_path, r.headers["x-modelyard-request-id"])
                assert attempts[0][0] == "fast" and attempts[0][2] in ("connection_dropped", "idle_timeout"), attempts
                if r.headers["x-modelyard-model"] == "fast":  # the streamed one was committed: clear error
                    assert stream_error(r)["error"]["code"] == "stream_interrupted"
                else:
                    assert r.headers["x-modelyard-model"] == "backup" and attempts[-1] == ("backup", "ok", None)
            down, _ = ask(gw)  # while it is down: backup answers, the reason is logged
            assert down.status_code == 200 and down.headers["x-modelyard-model"] == "backup"
            primary.set_default(Fault.ok())
            primary.start()  # same port
            recovered(gw)
            assert gw.router.pool.local("fast").health.state == "available"


def test_cloud_key_revoked_while_requests_are_in_flight(tmp_path, fakes, monkeypatch):
    """Run alone it failed: the first request of a process imported aiohttp (1.3-1.7 s at load ~8) inside the cloud
    model's 0.5 s first-token bound, so the three never reached the fake together (now imported when the gateway
    starts, gateway/app.py). Its own margin was tight too: a 0.3 s answer under a 0.5 s bound, three clients, the
    gateway and the fakes in one process on two loaded cores. Nothing here is about timeouts: the bounds are wide."""
    monkeypatch.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    oa, ol, an = fakes
    for s in fakes:
        s.reset()
    an.set_default(Fault.delay(1.0))
    config = gateway_config(tmp_path, oa.url, ol.url, an.url, slots={"cloud_slots": 8},
                            timeouts={**TIGHT, "first_token": 5.0, "idle": 5.0, "total": 20.0},
                            cooldown={"failures": 1, "seconds": 0.5, "max_seconds": 1})
    with GatewayServer(config) as gw:
        results: list[httpx.Response] = []

        def one() -> None:
            results.append(ask(gw, "writer")[0])

        first = [threading.Thread(target=one) for _ in range(3)]
        for t in first:
            t.start()
        an.wait_for(lambda: an.in_flight == 3)
        an.api_key = "rotated-elsewhere-0000"  # revoked: every new request gets 401
        second = [threading.Thread(target=one) for _ in range(3)]
        for t in second:
            t.start()
        for t in first + second:
            t.join(10)
        assert len(results) == 6 and all(r.status_code == 200 for r in results)
        models = sorted(r.headers["x-modelyard-model"] for r in results)
        assert models.count("cloud") == 3 and models.count("fast") == 3  # in-flight ones finished on cloud
        for r in results:
            if r.headers["x-modelyard-model"] == "fast":
                assert "cloud fallback auth_error" in r.headers["x-modelyard-route"] or \
                    "cloud skipped cooling_down" in r.headers["x-modelyard-route"]
        assert ANTHROPIC_KEY not in "".join(r.text for r in results)
        an.api_key = ANTHROPIC_KEY  # a valid key again
        an.set_default(Fault.ok())
        recovered(gw, "cloud", "writer")
