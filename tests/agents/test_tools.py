"""Built-in tools and MCP tools: confinement, allowlist, limits, and failures as messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from modelyard.agents.errors import AgentError
from modelyard.agents.tools import ToolError, Workspace, open_toolbox
from modelyard.config.schema import ToolsConfig
from modelyard.types import ToolCall
from tests.fakes import OpenAIServer

MCP_SERVER = Path(__file__).with_name("mcp_server.py")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "notes.txt").write_text("remember the milk\n")
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inner_link").symlink_to(root / "docs" / "notes.txt")
    return root


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name, dict(arguments), "c1")


def test_workspace_refuses_every_way_out(workspace: Path, tmp_path: Path) -> None:
    ws = Workspace(workspace)
    assert ws.resolve("docs/notes.txt") == workspace.resolve() / "docs" / "notes.txt"
    assert ws.resolve(str(workspace / "docs")) == workspace.resolve() / "docs"  # absolute inside is fine
    assert ws.resolve("docs/../docs/notes.txt").name == "notes.txt"
    assert ws.resolve("inner_link").name == "notes.txt"  # a symlink staying inside is fine
    for outside in ("../secret.txt", "docs/../../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd",
                    "escape", "escape_dir/secret.txt", "escape_dir"):
        with pytest.raises(ToolError, match="outside the workspace"):
            ws.resolve(outside)


async def test_file_tools_read_list_write(workspace: Path, tmp_path: Path) -> None:
    async with open_toolbox("eng", ToolsConfig(workspace=str(workspace), files="write")) as box:
        assert set(box.tools) == {"read_file", "list_files", "write_file"}
        read = await box.call(call("read_file", path="docs/notes.txt"))
        assert read.ok and read.text == "remember the milk\n"
        listing = await box.call(call("list_files"))
        assert listing.ok and "docs/" in listing.text.splitlines()
        wrote = await box.call(call("write_file", path="out/new.txt", content="hi"))
        assert wrote.ok and (workspace / "out" / "new.txt").read_text() == "hi"
        refused = await box.call(call("write_file", path="escape", content="pwned"))
        assert not refused.ok and "outside the workspace" in refused.text
        assert (tmp_path / "secret.txt").read_text() == "top secret"
        leaked = await box.call(call("read_file", path="../secret.txt"))
        assert not leaked.ok and "top secret" not in leaked.text
        missing = await box.call(call("read_file", path="nope.txt"))
        assert missing.text == "error: read_file: no such file: nope.txt"


async def test_read_mode_has_no_write_tool_and_bad_calls_get_messages(workspace: Path) -> None:
    async with open_toolbox("eng", ToolsConfig(workspace=str(workspace), files="read")) as box:
        unknown = await box.call(call("write_file", path="x", content="y"))
        assert not unknown.ok and "unknown tool 'write_file'" in unknown.text and "read_file" in unknown.text
        bad = await box.call(call("read_file", file="docs/notes.txt"))
        assert bad.bad_arguments and "'path' is a required property" in bad.text
        wrong_type = await box.call(call("read_file", path=42))
        assert wrong_type.bad_arguments and "path: 42 is not of type 'string'" in wrong_type.text


async def test_tools_need_a_workspace() -> None:
    with pytest.raises(AgentError, match=r"sets no tools\.workspace"):
        async with open_toolbox("eng", ToolsConfig(files="read")):
            pass
    async with open_toolbox("eng", ToolsConfig()) as box:
        assert not box  # everything off by default, fetch included


async def test_commands_allowlist_no_shell_timeout_and_cap(workspace: Path) -> None:
    cfg = ToolsConfig(workspace=str(workspace), commands=["ls", "echo", "sleep", "seq"], command_timeout=0.5,
                      output_limit=256)
    async with open_toolbox("eng", cfg) as box:
        listed = await box.call(call("run_command", command="ls", args=["docs"]))
        assert listed.ok and listed.text == "exit code 0\nnotes.txt\n"
        no_shell = await box.call(call("run_command", command="echo", args=["$HOME; rm -rf /"]))
        assert no_shell.text == "exit code 0\n$HOME; rm -rf /\n"
        refused = await box.call(call("run_command", command="rm", args=["-rf", "docs"]))
        assert not refused.ok and (workspace / "docs").exists()
        slow = await box.call(call("run_command", command="sleep", args=["30"]))
        assert slow.text.startswith("timed out after 0.5s")
        big = await box.call(call("run_command", command="seq", args=["1", "100000"]))
        assert "[output truncated at 256 bytes of 588895]" in big.text
        assert len(big.text.encode()) < 400


async def test_command_environment_has_no_secrets(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
    async with open_toolbox("eng", ToolsConfig(workspace=str(workspace), commands=["env"])) as box:
        out = await box.call(call("run_command", command="env"))
    assert out.ok and "sk-ant-should-not-leak" not in out.text and "PATH=" in out.text


async def test_fetch_is_opt_in_and_bounded() -> None:
    with OpenAIServer(["m1"]) as fake:
        async with open_toolbox("research", ToolsConfig(fetch=True, output_limit=256)) as box:
            got = await box.call(call("fetch_url", url=f"{fake.url}/v1/models"))
            assert got.ok and got.text.startswith("HTTP 200 application/json") and '"m1"' in got.text
            scheme = await box.call(call("fetch_url", url="file:///etc/passwd"))
            assert not scheme.ok and "only http and https" in scheme.text
        port = fake.port
    down = ToolsConfig(fetch=True, command_timeout=2)
    async with open_toolbox("research", down) as box:
        failed = await box.call(call("fetch_url", url=f"http://127.0.0.1:{port}/"))
        assert not failed.ok and "could not fetch" in failed.text


async def test_mcp_stdio_server_tools(workspace: Path) -> None:
    cfg = ToolsConfig(mcp=[{"command": sys.executable, "args": [str(MCP_SERVER)]}])
    async with open_toolbox("eng", cfg) as box:
        assert {"add", "explode"} <= set(box.tools)
        assert box.tools["add"].definition.parameters["required"] == ["a", "b"]
        added = await box.call(call("add", a=2, b=3))
        assert added.ok and added.text == "5"
        failed = await box.call(call("explode", reason="on purpose"))
        assert not failed.ok and failed.text.startswith("error: explode: ")  # the server's own error text
        bad = await box.call(call("add", a="two"))
        assert bad.bad_arguments


async def test_a_stdio_servers_relative_paths_are_read_from_the_config_files_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`command: tools/notes.py` (or `args: [tools/notes.py]`) beside the config started from a shell opened there,
    and 'could not start' from any other directory — the service's among them — as every other relative path of
    the config is read from the config file's directory."""
    conf = tmp_path / "conf"
    (conf / "tools").mkdir(parents=True)
    script = conf / "tools" / "notes.py"
    script.write_text(f"#!{sys.executable}\n" + MCP_SERVER.read_text())
    script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for server in ({"command": "tools/notes.py"}, {"command": sys.executable, "args": ["tools/notes.py"]}):
        async with open_toolbox("eng", ToolsConfig(mcp=[server]), conf) as box:
            added = await box.call(call("add", a=2, b=3))
            assert added.ok and added.text == "5", server


async def test_mcp_server_that_cannot_start_is_a_clear_error() -> None:
    cfg = ToolsConfig(mcp=[{"command": os.devnull + "/missing-server"}])
    with pytest.raises(AgentError, match="could not start"):
        async with open_toolbox("eng", cfg):
            pass
