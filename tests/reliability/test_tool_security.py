"""Tools under hostile arguments: what tests/agents/test_tools.py does not already cover.

Covered there: ``..``/absolute/symlink paths through Workspace.resolve and read/write, commands
off the allowlist, ``$HOME; rm -rf /`` passed literally, the command timeout and output cap, no
secrets in a command's environment. Here: every shell metacharacter, disguised command names,
writing and listing *through* a symlinked directory, a huge file, tools that never return (a
hanging URL, an MCP tool), and that each refusal is logged with its arguments redacted.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import pytest

from modelyard.agents.tools import open_toolbox
from modelyard.config.schema import ToolsConfig
from modelyard.types import ToolCall

STALL_SERVER = Path(__file__).with_name("mcp_stall_server.py")
METACHARACTERS = ["$(touch pwned1)", "`touch pwned2`", "; touch pwned3", "| touch pwned4", "&& touch pwned5",
                  "> pwned6", "*", "$HOME", "a\ntouch pwned7", "'\"; touch pwned8 #", "${IFS}touch${IFS}pwned9"]


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name, dict(arguments), "c1")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "out_dir").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "outside.txt").write_text("outside")
    return root


async def test_shell_metacharacters_are_passed_literally(workspace: Path) -> None:
    cfg = ToolsConfig(workspace=str(workspace), commands=["echo", "printf"])
    async with open_toolbox("eng", cfg) as box:
        out = await box.call(call("run_command", command="echo", args=METACHARACTERS))
        assert out.ok and out.text == "exit code 0\n" + " ".join(METACHARACTERS) + "\n"
        each = await box.call(call("run_command", command="printf", args=["%s|", *METACHARACTERS]))
        assert each.text == "exit code 0\n" + "".join(f"{m}|" for m in METACHARACTERS)
    assert sorted(p.name for p in workspace.iterdir()) == ["out_dir"], "nothing was created by a shell"


async def test_disguised_commands_are_refused_and_logged(workspace: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "modelyard.agents.tools")
    cfg = ToolsConfig(workspace=str(workspace), commands=["ls"])
    async with open_toolbox("eng", cfg) as box:
        for command in ("/bin/rm", "/bin/ls", "../../bin/ls", "ls;rm", "ls ", "LS", "rm", "sh", "ls\n"):
            out = await box.call(call("run_command", command=command, args=["-la"]))
            assert not out.ok, command
            assert out.text.startswith("error: ")
    assert caplog.text.count("refused") >= 9


async def test_writing_and_listing_through_a_symlinked_dir_is_refused(workspace: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "modelyard.agents.tools")
    async with open_toolbox("eng", ToolsConfig(workspace=str(workspace), files="write")) as box:
        for path in ("out_dir/new.txt", "out_dir/outside.txt", "./out_dir/../out_dir/x", str(tmp_path / "abs.txt"),
                     "../abs.txt", "nested/../../abs.txt"):
            wrote = await box.call(call("write_file", path=path, content="pwned"))
            assert not wrote.ok and "outside the workspace" in wrote.text, path
        listed = await box.call(call("list_files", path="out_dir"))
        assert not listed.ok and "outside.txt" not in listed.text
        nul = await box.call(call("read_file", path="a\x00b"))
        assert not nul.ok
    assert not (tmp_path / "new.txt").exists() and not (tmp_path / "abs.txt").exists()
    assert (tmp_path / "outside.txt").read_text() == "outside"
    assert "write_file" in caplog.text and "outside the workspace" in caplog.text


async def test_huge_file_is_capped(workspace: Path) -> None:
    (workspace / "big.log").write_bytes(b"x" * 5_000_000)
    async with open_toolbox("eng", ToolsConfig(workspace=str(workspace), files="read", output_limit=1000)) as box:
        out = await box.call(call("read_file", path="big.log"))
    assert out.ok and len(out.text) < 1100 and "[file truncated at 1000 bytes]" in out.text


async def test_url_that_never_answers_is_bounded() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        async with open_toolbox("research", ToolsConfig(fetch=True, command_timeout=0.5)) as box:
            start = time.perf_counter()
            out = await box.call(call("fetch_url", url=url))
            assert time.perf_counter() - start < 2
    assert not out.ok and "could not fetch" in out.text


async def test_mcp_tool_that_never_returns_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    cfg = ToolsConfig(mcp=[{"command": sys.executable, "args": [str(STALL_SERVER)]}], command_timeout=1)
    async with open_toolbox("eng", cfg) as box:
        start = time.perf_counter()
        out = await box.call(call("stall", seconds=3600))
        elapsed = time.perf_counter() - start
    assert not out.ok and "TimeoutError" in out.text
    assert elapsed < 15  # the MCP call bound: max(command_timeout, 10 s)
