"""MCP servers that misbehave (tests/reliability/mcp_faulty_server.py): every case ends in a clear,
bounded outcome — a start error the user can read, or an error result the model can act on."""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import pytest

from modelyard.agents.errors import AgentError
from modelyard.agents.tools import open_toolbox
from modelyard.agents.tools.mcp_client import provider_name
from modelyard.config.schema import ToolsConfig
from modelyard.types import ToolCall

SERVER = Path(__file__).with_name("mcp_faulty_server.py")
PROVIDER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def config(mode: str) -> ToolsConfig:
    return ToolsConfig(mcp=[{"command": sys.executable, "args": [str(SERVER), mode],
                             "env": {"MCP_TOKEN": "sk-mcp-secret-123"}}], command_timeout=2)


@pytest.mark.parametrize("mode", ["crash_at_start", "notype"])
async def test_a_server_that_dies_or_lists_refused_tools_at_start_is_a_clear_agent_error(mode: str) -> None:
    with pytest.raises(AgentError) as caught:  # was an ExceptionGroup out of the SDK's task groups
        async with open_toolbox("eng", config(mode)):
            pass
    assert "could not start" in str(caught.value)
    assert "sk-mcp-secret" not in str(caught.value)


async def test_a_server_that_cannot_start_says_why_in_its_own_words() -> None:
    """The SDK only says "Connection closed"; what the server printed on stderr says which package is missing."""
    with pytest.raises(AgentError) as caught:
        async with open_toolbox("eng", config("no_module")):
            pass
    text = str(caught.value)
    assert "could not start" in text
    assert "it said on stderr:" in text and "No module named 'mcp_server_fetch'" in text


async def test_a_start_error_quotes_stderr_without_the_secrets_it_was_given() -> None:
    with pytest.raises(AgentError) as caught:
        async with open_toolbox("eng", config("crash_at_start")):
            pass
    text = str(caught.value)
    assert "Traceback: cannot start, token=" in text  # its words, the token it printed back cut out
    assert "sk-mcp-secret" not in text


async def test_a_server_that_logs_more_than_a_pipe_holds_still_starts_and_answers() -> None:
    """Its stderr is read as it comes: a pipe nobody read would stall the server once 64 KB were waiting."""
    async with open_toolbox("eng", config("chatty")) as box:
        out = await box.call(ToolCall("secret", {}, "c1"))
    assert out.ok, out.text


async def test_a_server_that_dies_mid_call_gives_the_model_an_error_result(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with open_toolbox("eng", config("crash_mid_call")) as box:
        first = await box.call(ToolCall("secret", {}, "c1"))
        again = await box.call(ToolCall("secret", {}, "c2"))
    for out in (first, again):
        assert not out.ok and "the MCP server failed" in out.text
    assert not any(r.exc_info for r in caplog.records), "no traceback logged for a server's death"


async def test_names_providers_refuse_are_offered_valid_and_called_by_the_real_name() -> None:
    async with open_toolbox("eng", config("odd")) as box:
        names = list(box.tools)
        assert all(PROVIDER_NAME.match(n) for n in names), names
        assert "read_file" in names
        out = await box.call(ToolCall("read_file", {}, "c1"))
    assert out.ok and out.text == "read.file ran"  # the server was asked for its own name


async def test_a_tool_whose_schema_is_no_json_schema_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    async with open_toolbox("eng", config("odd")) as box:
        assert "badschema" not in box.tools
        out = await box.call(ToolCall("badschema", {"q": "x"}, "c1"))  # was a TypeError out of the toolbox
    assert not out.ok and "unknown tool" in out.text
    assert any("left out" in r.getMessage() for r in caplog.records)


async def test_non_text_content_is_described_not_dropped() -> None:
    async with open_toolbox("eng", config("odd")) as box:
        texts = {name: (await box.call(ToolCall(name, {}, "c1"))).text
                 for name in ("image", "resource", "link", "structured", "fails")}
    assert texts["resource"] == "the notes"
    assert "file:///big.csv" in texts["link"]
    assert "image/png" in texts["image"] and "iVBOR" not in texts["image"]
    assert texts["structured"] == '{"rows": 3, "ok": true}'  # JSON, not a Python repr
    assert texts["fails"] == "error: fails: no such city"


async def test_log_lines_on_a_stdio_servers_stdout_do_not_break_it_nor_reach_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_toolbox("eng", config("junk")) as box:  # the SDK skips them (held before this hunt too)
        out = await box.call(ToolCall("secret", {}, "c1"))
    assert out.ok and out.text == "secret ran"
    assert "sk-mcp-secret" not in caplog.text  # the SDK quoted each line in a logged traceback
    assert not any(r.exc_info for r in caplog.records)
    assert any("the line is not shown" in r.getMessage() for r in caplog.records)


def test_provider_names_stay_unique_and_valid() -> None:
    taken = {"read_file"}
    long = "a.b" * 40
    first = provider_name(long, taken, "srv")
    taken.add(first)
    second = provider_name(long, taken, "srv")
    assert first != second and all(PROVIDER_NAME.match(n) for n in (first, second))
    assert provider_name("read_file", {"read_file"}, "srv") == "srv_read_file"
    assert provider_name("ok-name", set(), "srv") == "ok-name"


@pytest.mark.parametrize("mode", ["odd", "crash_mid_call"])
async def test_the_turns_own_error_comes_out_as_itself_with_an_mcp_server_open(mode: str) -> None:
    with pytest.raises(AgentError, match="chain exhausted"):  # was an ExceptionGroup wrapping it
        async with open_toolbox("eng", config(mode)) as box:
            await box.call(ToolCall("secret", {}, "c1"))
            raise AgentError("chain exhausted")


async def test_a_slow_starting_server_gets_its_own_start_bound() -> None:
    slow = {"command": sys.executable, "args": [str(SERVER), "slow_start"], "env": {"START_DELAY": "3"}}
    patient = ToolsConfig(mcp=[{**slow, "start_timeout": 20}], command_timeout=1)
    async with open_toolbox("eng", patient) as box:  # was bounded by max(command_timeout, 10 s), no setting
        assert (await box.call(ToolCall("secret", {}, "c1"))).text == "secret ran"
    hasty = ToolsConfig(mcp=[{**slow, "start_timeout": 1}], command_timeout=1)
    start = time.perf_counter()
    with pytest.raises(AgentError, match=r"could not start: no answer within 1 s \(tools.mcp\[\].start_timeout\)"):
        async with open_toolbox("eng", hasty):
            pass
    assert time.perf_counter() - start < 10


async def test_a_schema_whose_refs_resolve_nowhere_leaves_checking_to_the_server() -> None:
    async with open_toolbox("eng", config("odd")) as box:  # was an Unresolvable raised out of the toolbox
        out = await box.call(ToolCall("danglingref", {"a": 1, "b": 2}, "c1"))
    assert out.ok and out.text == "danglingref ran"


async def test_a_huge_result_is_capped() -> None:
    cfg = config("odd")
    async with open_toolbox("eng", cfg) as box:
        out = await box.call(ToolCall("huge", {}, "c1"))
    assert out.ok and len(out.text.encode()) <= cfg.output_limit + 1024 + 100
    assert "[output truncated at" in out.text


async def test_a_program_not_there_or_not_runnable_says_what_to_do(tmp_path: Path) -> None:
    """`command: nosuch-mcp-server` said "could not start: FileNotFoundError: [Errno 2] No such file or directory:
    'nosuch-mcp-server'" and a script not marked executable "PermissionError: [Errno 13] …": what the OS says, not
    what to change (`modelyard check` said it; a request did not)."""
    with pytest.raises(AgentError) as missing:
        async with open_toolbox("eng", ToolsConfig(mcp=[{"command": "nosuch-mcp-server"}])):
            pass
    assert ("MCP server 'nosuch-mcp-server' could not start: the program 'nosuch-mcp-server' is not found (not on "
            "PATH): install it, or correct tools.mcp[].command") in str(missing.value)
    script = tmp_path / "server.py"
    script.write_text(SERVER.read_text())
    with pytest.raises(AgentError) as unrunnable:
        async with open_toolbox("eng", ToolsConfig(mcp=[{"command": str(script)}])):
            pass
    assert f"the program '{script}' is not executable: make it executable (chmod +x)" in str(unrunnable.value)
    assert "Errno" not in str(missing.value) + str(unrunnable.value)
