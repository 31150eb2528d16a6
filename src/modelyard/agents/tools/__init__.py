"""Tools an agent may use, all off unless its ``tools:`` config enables them."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from modelyard.agents.errors import AgentError
from modelyard.agents.tools.base import Tool, Toolbox, ToolError, ToolOutcome
from modelyard.agents.tools.commands import command_tool
from modelyard.agents.tools.fetch import fetch_tool
from modelyard.agents.tools.files import Workspace, file_tools
from modelyard.config.schema import McpServer, ToolsConfig

log = logging.getLogger("modelyard.agents.tools")

__all__ = ["Tool", "ToolError", "ToolOutcome", "Toolbox", "Workspace", "has_tools", "open_toolbox"]


def has_tools(cfg: ToolsConfig) -> bool:
    return cfg.files != "off" or bool(cfg.commands) or cfg.fetch or bool(cfg.mcp)


def workspace_path(cfg: ToolsConfig, base_dir: Path | None) -> Path | None:
    """``tools.workspace``; a relative one is relative to the config file's directory."""
    if not cfg.workspace:
        return None
    path = Path(cfg.workspace).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def missing_workspace(cfg: ToolsConfig, root: Path | None) -> str:
    """What to say of a ``tools.workspace`` that is no directory: the setting as written, where it was looked for."""
    relative = cfg.workspace is not None and not Path(cfg.workspace).expanduser().is_absolute()
    return (f"tools.workspace '{cfg.workspace}' is not a directory ({root}"
            + (", read from the config file's directory" if relative else "")
            + "): create it, or set tools.workspace to the directory the agent's tools may use")


def beside_config(server: McpServer, base_dir: Path | None) -> McpServer:
    """A stdio server whose ``command`` is a relative path (``./mcp/notes.py``, ``tools/server``) run from the
    config file's directory (``~`` the home directory), as every relative path of the config is read: it was looked
    for in the working directory (or the workspace), so the server started from one shell and 'No such file' from
    another, or from the service. A bare name (``npx``, ``uvx``) is looked for on PATH, as before."""
    command = server.command
    if command is None or base_dir is None or not any(sep in command for sep in ("/", os.sep)):
        return server
    path = Path(command).expanduser()
    full = str(path if path.is_absolute() else base_dir / path)
    return server if full == command else server.model_copy(update={"command": full})


@asynccontextmanager
async def open_toolbox(agent: str, cfg: ToolsConfig, base_dir: Path | None = None) -> AsyncIterator[Toolbox]:
    """The agent's tools; MCP servers run until the context ends, a stdio one in the workspace, else in the config
    file's directory (``base_dir``), where the relative paths in its ``args`` are read."""
    box = Toolbox(output_limit=cfg.output_limit, agent=agent)
    base_dir = base_dir.absolute() if base_dir is not None else None  # `--config conf.yaml`: its directory is "."
    root = workspace_path(cfg, base_dir)
    if (cfg.files != "off" or cfg.commands) and root is None:
        raise AgentError(f"agent '{agent}' enables file tools or commands but sets no tools.workspace")
    try:
        workspace = Workspace(root) if root is not None else None
    except ToolError:  # it said "workspace nope is not a directory": which setting, and where it was looked for
        raise AgentError(f"agent '{agent}': {missing_workspace(cfg, root)}") from None
    if workspace is not None and cfg.files != "off":
        for tool in file_tools(workspace, cfg.files, cfg.output_limit):
            box.add(tool)
    if workspace is not None and cfg.commands:
        box.add(command_tool(workspace, cfg.commands, cfg.command_timeout, cfg.output_limit))
    if cfg.fetch:
        box.add(fetch_tool(cfg.command_timeout, cfg.output_limit))
    async with AsyncExitStack() as stack:
        for server in cfg.mcp:
            try:
                from modelyard.agents.tools.mcp_client import mcp_server_tools  # the mcp SDK is slow to import

                await stack.enter_async_context(mcp_server_tools(
                    beside_config(server, base_dir), box, timeout=max(cfg.command_timeout, 10.0),
                    cwd=workspace.root if workspace else base_dir))
            except ToolError as exc:
                if server.required:
                    raise AgentError(f"agent '{agent}': {exc}") from None
                log.warning("agent %s: %s; its tools are left out of this request (tools.mcp[].required: false)",
                            agent, exc)
        try:
            yield box
        except BaseException as exc:  # re-raised below, unwrapped
            failed: BaseException | None = exc
        else:
            failed = None
        # the turn's own error (chain exhausted...) is raised after the servers are closed: raised through the
        # MCP SDK's task groups it came out as an ExceptionGroup that no `except ModelyardError` catches
        if failed is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()
            raise failed
