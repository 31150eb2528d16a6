"""MCP servers reached over HTTP: a real one built with the SDK's own server (tests/agents/mcp_http_server.py,
streamable HTTP and legacy SSE, in a process of its own) and a misbehaving one (mcp_http_faulty_server.py:
drops mid-call, 401, 404 for a forgotten session, slow answers). Every case ends bounded and clear."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.mcp_http_faulty_server import FaultyHttpMcp

from modelyard.agents.errors import AgentError
from modelyard.agents.tools import open_toolbox
from modelyard.config.schema import ToolsConfig
from modelyard.types import ToolCall

REAL = Path(__file__).parents[1] / "agents" / "mcp_http_server.py"
TOKEN = "sk-mcp-http-secret-4242"


@contextmanager
def real_server(transport: str = "streamable-http", **env: str) -> Iterator[int]:
    """The SDK's server in a process of its own; its port."""
    proc = subprocess.Popen([sys.executable, str(REAL), transport], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, **env}, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens (bounded by the test's own timeout)
        assert line.startswith("PORT "), line
        yield int(line.split()[1])
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()  # Popen leaves its pipe open after wait(): a ResourceWarning in a later test


async def until(condition: Callable[[], bool], bound: float = 15.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def remote(url: str, **server: Any) -> ToolsConfig:
    return ToolsConfig(mcp=[{"url": url, **server}], command_timeout=5)


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall(name, args, "c")


async def test_a_real_streamable_http_server_with_a_token_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_MCP_TOKEN", TOKEN)
    with real_server(MCP_HTTP_TOKEN=TOKEN) as port:
        cfg = remote(f"http://127.0.0.1:{port}/mcp?team=7", bearer_token_env="TEST_MCP_TOKEN")
        async with open_toolbox("eng", cfg) as box:  # was: 'command' required, no url
            assert {"add", "slow", "grow"} <= set(box.tools)
            added = await box.call(call("add", a=2, b=40))
    assert added.ok and added.text == "42"
    assert TOKEN not in caplog.text and "team=7" not in caplog.text


@pytest.mark.parametrize("token", [None, "sk-wrong-token-1"])
async def test_a_refused_token_is_a_clear_start_error_that_shows_no_token(
        token: str | None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server: dict[str, Any] = {}
    if token:
        monkeypatch.setenv("TEST_MCP_TOKEN", token)
        server["bearer_token_env"] = "TEST_MCP_TOKEN"
    refused = "could not start: HTTP 401: the server refused the credentials"
    with real_server(MCP_HTTP_TOKEN=TOKEN) as port, pytest.raises(AgentError, match=refused) as err:
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/mcp", **server)):
            pass
    assert ("bearer_token_env or headers_env" in str(err.value)) and TOKEN not in str(err.value)
    assert not token or (token not in str(err.value) and token not in caplog.text)


async def test_an_unset_token_variable_is_named_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_MCP_TOKEN", raising=False)
    with pytest.raises(AgentError, match=r"TEST_MCP_TOKEN \(tools.mcp\[\].bearer_token_env\) is not set"):
        async with open_toolbox("eng", remote("http://127.0.0.1:9/mcp", bearer_token_env="TEST_MCP_TOKEN")):
            pass


async def test_a_wrong_path_and_no_server_are_clear_start_errors() -> None:
    with real_server() as port, pytest.raises(AgentError, match="HTTP 404: nothing answers MCP at this URL"):
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/wrong")):
            pass
    start = time.perf_counter()
    with pytest.raises(AgentError, match="could not start: ConnectError"):
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/mcp")):
            pass
    assert time.perf_counter() - start < 20


async def test_tools_list_changed_over_http_refreshes_the_tools() -> None:
    with real_server() as port:
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/mcp")) as box:
            assert "extra" not in box.tools
            assert (await box.call(call("grow"))).text == "grown"
            server = box.refreshers[0].__self__  # type: ignore[attr-defined]
            # the server sends it on its standalone GET stream, which may trail the call's answer
            await until(lambda: server.stale)
            await box.refresh()  # before the next model step
            out = await box.call(call("extra"))
    assert out.ok and out.text == "extra ran"


async def test_a_slow_answer_past_the_call_timeout_is_cut_and_the_session_kept() -> None:
    with real_server() as port:
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/mcp", call_timeout=1)) as box:
            start = time.perf_counter()
            late = await box.call(call("slow", seconds=30))
            elapsed = time.perf_counter() - start
            after = await box.call(call("add", a=1, b=1))
    assert not late.ok and "no answer within 1 s" in late.text and elapsed < 10
    assert after.ok and after.text == "2"


async def test_a_restarted_server_forgot_the_session_and_a_new_one_is_started(
        caplog: pytest.LogCaptureFixture) -> None:
    with real_server() as port:
        cm = open_toolbox("eng", remote(f"http://127.0.0.1:{port}/mcp"))
        box = await cm.__aenter__()
        assert (await box.call(call("add", a=1, b=2))).text == "3"
    try:
        with real_server(MCP_PORT=str(port)):  # a deploy: the same URL, a process that knows no session
            again = await box.call(call("add", a=2, b=2))  # was: "Session terminated" for the rest of the request
    finally:
        await cm.__aexit__(None, None, None)
    assert again.ok and again.text == "4"
    assert any("no longer knew its session" in r.getMessage() for r in caplog.records)


async def test_a_legacy_sse_server_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MCP_TOKEN", TOKEN)
    with real_server("sse", MCP_HTTP_TOKEN=TOKEN) as port:
        cfg = remote(f"http://127.0.0.1:{port}/sse", transport="sse", bearer_token_env="TEST_MCP_TOKEN")
        async with open_toolbox("eng", cfg) as box:
            out = await box.call(call("add", a=20, b=22))
    assert out.ok and out.text == "42"
    refused = "could not start: HTTP 401: the server refused the credentials"
    with real_server("sse", MCP_HTTP_TOKEN=TOKEN) as port, pytest.raises(AgentError, match=refused):
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/sse", transport="sse")):
            pass


async def test_a_dropped_connection_mid_call_is_reconnected_once_and_said() -> None:
    with FaultyHttpMcp() as srv:
        async with open_toolbox("eng", remote(srv.url)) as box:
            srv.drop_calls = 1
            dropped = await box.call(call("echo", text="x"))
            after = await box.call(call("echo", text="y"))
        assert srv.count("initialize") == 2
    assert not dropped.ok and "failed during this call (RemoteProtocolError" in dropped.text
    assert "restarted (1 of 1 restarts in this request)" in dropped.text
    assert after.ok and after.text == "y"


async def test_a_forgotten_session_gets_a_new_one_and_the_call_is_sent_again() -> None:
    with FaultyHttpMcp() as srv:
        async with open_toolbox("eng", remote(srv.url, restarts=0)) as box:
            first = await box.call(call("echo", text="one"))
            srv.forget_sessions()
            second = await box.call(call("echo", text="two"))  # the spec's MUST, not a restart: restarts: 0
        assert srv.count("initialize") == 2
        sessions = [sid for method, sid, _ in srv.requests if method == "tools/call"]
    assert first.text == "one" and second.ok and second.text == "two"
    assert sessions[0] == sessions[1] != sessions[2]  # the refused call, then the same call on a new session


async def test_a_server_that_forgets_every_session_is_not_chased() -> None:
    with FaultyHttpMcp() as srv:
        async with open_toolbox("eng", remote(srv.url)) as box:
            srv.forget_sessions()
            srv.keep_sessions = False
            before = srv.count("initialize")
            out = await box.call(call("echo", text="x"))
            again = await box.call(call("echo", text="y"))
        assert srv.count("initialize") - before <= 2  # at most one new session per call: no chase
    assert not out.ok and not again.ok


async def test_401_mid_session_is_a_clear_error_and_not_retried() -> None:
    with FaultyHttpMcp() as srv:
        async with open_toolbox("eng", remote(srv.url)) as box:
            srv.token = "rotated"
            out = await box.call(call("echo", text="x"))
        assert srv.count("initialize") == 1
    assert not out.ok and "refused the call: HTTP 401" in out.text


async def test_a_slow_raw_answer_is_cut_the_server_told_and_the_session_kept() -> None:
    with FaultyHttpMcp() as srv:
        async with open_toolbox("eng", remote(srv.url, call_timeout=1)) as box:
            start = time.perf_counter()
            late = await box.call(call("slow", seconds=5))
            elapsed = time.perf_counter() - start
            after = await box.call(call("echo", text="still here"))
        assert srv.count("notifications/cancelled") == 1 and srv.count("initialize") == 1
    assert not late.ok and "no answer within 1 s" in late.text and elapsed < 4
    assert after.ok and after.text == "still here"


@pytest.mark.parametrize(("transport", "path"), [("streamable-http", "/mcp"), ("sse", "/sse")])
async def test_a_real_server_killed_mid_call_is_bounded_and_said(transport: str, path: str) -> None:
    proc = subprocess.Popen([sys.executable, str(REAL), transport], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        cfg = remote(f"http://127.0.0.1:{port}{path}", transport=transport, call_timeout=60)
        async with open_toolbox("eng", cfg) as box:
            asyncio.get_running_loop().call_later(1.0, proc.kill)  # while `slow` runs
            start = time.perf_counter()
            killed = await box.call(call("slow", seconds=30))
            elapsed = time.perf_counter() - start
            later = await box.call(call("add", a=1, b=1))
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()  # Popen leaves its pipe open after wait(): a ResourceWarning in a later test
    assert not killed.ok and "the MCP server failed during this call" in killed.text
    assert "restarting it failed (ConnectError" in killed.text and elapsed < 30  # not the call's 60 s bound
    assert not later.ok and "already restarted 1 time(s)" in later.text


async def test_transport_auto_finds_a_legacy_sse_server_and_says_what_it_tried() -> None:
    with real_server("sse") as port:
        async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/sse")) as box:  # transport: auto
            out = await box.call(call("add", a=1, b=41))
        with pytest.raises(AgentError) as err:
            async with open_toolbox("eng", remote(f"http://127.0.0.1:{port}/nothing-here")):
                pass
    assert out.ok and out.text == "42"
    assert "HTTP 404: nothing answers MCP at this URL" in str(err.value) and "nor over SSE (HTTP 404)" in str(err.value)
