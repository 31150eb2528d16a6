"""Tools served by MCP servers over stdio, through the official ``mcp`` SDK.

Each configured server is started as a subprocess for the duration of one agent loop (the
SDK's sessions live inside one task's async context), its tools are listed and offered to the
model, and calls go through ``session.call_tool``. A tool whose name clashes with one already
in the toolbox is offered as ``server_tool``.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from modelyard.agents.tools.base import Tool, ToolError
from modelyard.config.schema import McpServer
from modelyard.types import ToolDefinition


def _field(obj: Any, *names: str) -> Any:
    """mcp 1.x uses camelCase attributes, 2.x snake_case."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _result_text(result: Any) -> tuple[bool, str]:
    parts = []
    for item in _field(result, "content") or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')}]")
    structured = _field(result, "structured_content", "structuredContent")
    if not parts and structured is not None:
        parts.append(str(structured))
    return bool(_field(result, "is_error", "isError")), "\n".join(parts)


async def mcp_tools(stack: AsyncExitStack, server: McpServer, *, timeout: float, taken: set[str],
                    cwd: Path | None = None) -> list[Tool]:
    """Start ``server`` (closed with ``stack``) and wrap its tools."""
    params = StdioServerParameters(command=server.command, args=list(server.args), env=dict(server.env) or None,
                                   cwd=str(cwd) if cwd else None)
    errlog = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - closed by the stack
    try:
        streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        async with asyncio.timeout(timeout):
            await session.initialize()
            listed = await session.list_tools()
    except (OSError, TimeoutError) as exc:
        raise ToolError(f"MCP server '{server.command}' could not start: {type(exc).__name__}: {exc}") from None
    label = Path(server.command).stem if not server.args else Path(server.args[-1]).stem
    tools = []
    for spec in listed.tools:
        remote = spec.name
        name = remote if remote not in taken else f"{label}_{remote}"
        taken.add(name)

        async def run(args: dict[str, Any], remote: str = remote) -> str:
            async with asyncio.timeout(timeout):
                result = await session.call_tool(remote, args)
            is_error, text = _result_text(result)
            if is_error:
                raise ToolError(text or "the MCP tool reported an error")
            return text

        parameters = _field(spec, "input_schema", "inputSchema") or {"type": "object", "properties": {}}
        tools.append(Tool(ToolDefinition(name, spec.description or "", parameters), run))
    return tools
