"""MCP servers over stdio that die or change their tools within a request (tests/reliability/mcp_faulty_server.py):
a dead server is started again once, with a back-off, and says so; never in a loop; a changed tool list is
offered as it is now."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyard.agents.errors import AgentError
from modelyard.agents.tools import open_toolbox
from modelyard.config.schema import ToolsConfig
from modelyard.types import ToolCall

SERVER = Path(__file__).with_name("mcp_faulty_server.py")


def config(mode: str, tmp_path: Path, **server: Any) -> ToolsConfig:
    env = {"START_LOG": str(tmp_path / "starts"), "CRASH_MARKER": str(tmp_path / "crashed")}
    return ToolsConfig(mcp=[{"command": sys.executable, "args": [str(SERVER), mode], "env": env, **server}],
                       command_timeout=5)


def starts(tmp_path: Path) -> int:
    path = tmp_path / "starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_a_server_that_dies_mid_call_is_restarted_once_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with open_toolbox("eng", config("crash_once", tmp_path)) as box:
        died = await box.call(ToolCall("secret", {}, "c1"))
        again = await box.call(ToolCall("secret", {}, "c2"))  # was: failed at once for the rest of the request
    assert not died.ok and "the MCP server failed during this call" in died.text
    assert "restarted (1 of 1 restarts in this request)" in died.text and "call the tool again" in died.text
    assert again.ok and again.text == "secret ran"
    assert starts(tmp_path) == 2
    assert any("restarting it in 0.5 s (restart 1 of 1" in r.getMessage() for r in caplog.records)
    assert any("restarted (1 of 1" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


async def test_a_server_that_keeps_dying_is_restarted_once_then_given_up_without_a_loop(tmp_path: Path) -> None:
    async with open_toolbox("eng", config("crash_mid_call", tmp_path)) as box:
        outs = [await box.call(ToolCall("secret", {}, f"c{i}")) for i in range(4)]
        start = time.perf_counter()
        last = await box.call(ToolCall("secret", {}, "c9"))
        quick = time.perf_counter() - start
    assert "restarted (1 of 1" in outs[0].text
    assert all(not o.ok for o in [*outs, last])
    for out in (*outs[1:], last):
        assert "already restarted 1 time(s) in this request" in out.text, out.text
        assert "unavailable until the next request" in out.text
    assert starts(tmp_path) == 2  # the first start and one restart: nothing more however often it is called
    assert quick < 2  # given up: no start, no back-off


async def until(condition: Callable[[], bool], bound: float = 15.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_server_that_stopped_between_calls_is_started_before_the_next_call(tmp_path: Path) -> None:
    async with open_toolbox("eng", config("die_idle", tmp_path)) as box:
        first = await box.call(ToolCall("secret", {}, "c1"))
        server = box.refreshers[0].__self__  # type: ignore[attr-defined]
        await until(lambda: not server.connected)  # its exit seen (in a loop: while the model thinks)
        second = await box.call(ToolCall("secret", {}, "c2"))  # the call never reached the dead one: sent anew
    assert first.ok and first.text == "secret ran"
    assert second.ok and second.text.endswith("secret ran")
    assert "had stopped and was restarted (1 of 1" in second.text
    assert starts(tmp_path) == 2


async def test_restarts_zero_keeps_the_old_behaviour(tmp_path: Path) -> None:
    async with open_toolbox("eng", config("crash_once", tmp_path, restarts=0)) as box:
        died = await box.call(ToolCall("secret", {}, "c1"))
        again = await box.call(ToolCall("secret", {}, "c2"))
    assert not died.ok and "already restarted 0 time(s)" in died.text
    assert not again.ok and starts(tmp_path) == 1


async def test_a_restart_that_fails_leaves_the_tools_unavailable(tmp_path: Path) -> None:
    cfg = config("crash_mid_call", tmp_path, env={"START_LOG": str(tmp_path / "starts"), "REFUSE_RESTART": "1"})
    async with open_toolbox("eng", cfg) as box:
        died = await box.call(ToolCall("secret", {}, "c1"))
        later = await box.call(ToolCall("secret", {}, "c2"))
    assert not died.ok and "restarting it failed" in died.text and "unavailable for the rest" in died.text
    assert not later.ok and "already restarted 1 time(s)" in later.text
    assert starts(tmp_path) == 2


async def test_tools_list_changed_refreshes_the_offered_tools(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with open_toolbox("eng", config("changing", tmp_path)) as box:
        assert "secret" in box.tools and "extra" not in box.tools
        grew = await box.call(ToolCall("grow", {}, "c1"))
        await box.refresh()  # what the loop does before each model step; was: the list fixed for the request
        names = set(box.tools)
        extra = await box.call(ToolCall("extra", {}, "c2"))
        gone = await box.call(ToolCall("secret", {}, "c3"))
    assert grew.ok
    assert "extra" in names and "secret" not in names
    assert extra.ok and extra.text == "extra ran"
    assert not gone.ok and "unknown tool 'secret'" in gone.text
    assert any("tools now:" in r.getMessage() and "added: extra" in r.getMessage() for r in caplog.records)


async def test_refresh_without_a_notification_lists_nothing_again(tmp_path: Path) -> None:
    async with open_toolbox("eng", config("changing", tmp_path)) as box:
        before = box.definitions()
        await box.refresh()
        assert box.definitions() == before


@pytest.mark.parametrize("mode", ["paged", "stuck_cursor"])
async def test_every_page_of_the_tool_list_is_offered(mode: str, tmp_path: Path) -> None:
    start = time.perf_counter()
    async with open_toolbox("eng", config(mode, tmp_path)) as box:  # was: the first page only (3 tools)
        names = set(box.tools)
        out = await box.call(ToolCall("secret", {}, "c1"))  # on the last page
    assert {"grow", "read_file", "huge", "fails", "secret"} <= names
    assert out.ok and out.text == "secret ran"
    assert time.perf_counter() - start < 20  # a cursor that never advances ends the walk


async def test_a_server_that_never_answers_at_start_is_bounded_by_its_start_timeout(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(AgentError, match=r"could not start: no answer within 1 s"):
        async with open_toolbox("eng", config("mute", tmp_path, start_timeout=1)):
            pass
    assert time.perf_counter() - start < 8  # not start_timeout plus a graceful close's 10 s wait


async def test_a_turn_cancelled_while_a_server_starts_leaves_no_server_running(tmp_path: Path) -> None:
    async def turn() -> None:
        async with open_toolbox("eng", config("mute", tmp_path, start_timeout=60)):
            pass

    task = asyncio.create_task(turn())
    await until(lambda: starts(tmp_path) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int((tmp_path / "starts").read_text().split()[0])
    proc = Path(f"/proc/{pid}")
    await until(lambda: not proc.exists() or "State:\tZ" in (proc / "status").read_text())


async def test_a_server_not_required_that_cannot_start_is_left_out_and_the_agent_runs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = ToolsConfig(mcp=[{"command": sys.executable, "args": [str(SERVER), "crash_at_start"], "required": False},
                           {"command": sys.executable, "args": [str(SERVER), "odd"]}])
    async with open_toolbox("eng", cfg) as box:  # was: the agent failed with the first server's start error
        out = await box.call(ToolCall("secret", {}, "c1"))
    assert out.ok and out.text == "secret ran"
    assert any("could not start" in r.getMessage() and "required: false" in r.getMessage() for r in caplog.records)


async def test_a_wedged_server_that_answers_no_ping_is_restarted(tmp_path: Path) -> None:
    async with open_toolbox("eng", config("wedge_once", tmp_path, call_timeout=1)) as box:
        start = time.perf_counter()
        wedged = await box.call(ToolCall("secret", {}, "c1"))
        elapsed = time.perf_counter() - start
        again = await box.call(ToolCall("secret", {}, "c2"))  # was: every call waited out its timeout
    assert not wedged.ok
    assert "no answer within 1 s (TimeoutError; tools.mcp[].call_timeout), nor to a ping" in wedged.text
    assert "restarted (1 of 1 restarts in this request)" in wedged.text and elapsed < 10
    assert again.ok and again.text == "secret ran"
    assert starts(tmp_path) == 2


async def test_the_next_request_starts_a_server_that_died_in_the_last_one_afresh(tmp_path: Path) -> None:
    cfg = config("crash_once", tmp_path, restarts=0)
    async with open_toolbox("eng", cfg) as box:  # one request (a turn): the server dies, no restart allowed
        assert not (await box.call(ToolCall("secret", {}, "c1"))).ok
    async with open_toolbox("eng", cfg) as box:  # the next turn (held before this change too)
        out = await box.call(ToolCall("secret", {}, "c2"))
    assert out.ok and out.text == "secret ran" and starts(tmp_path) == 2
