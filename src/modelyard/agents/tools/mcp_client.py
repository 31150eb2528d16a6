"""Tools served by MCP servers over stdio, through the official ``mcp`` SDK.

Each configured server is started as a subprocess for the duration of one agent loop (the
SDK's sessions live inside one task's async context), its tools are listed and offered to the
model, and calls go through ``session.call_tool``. A tool whose name clashes with one already
in the toolbox is offered as ``server_tool``.

Servers are other people's code, so nothing they do may reach the user as a traceback: a server
that dies at start (or lists tools the SDK refuses) is a clear start error; one that dies mid-call
gives the model an error result; names providers refuse (dots, over 64 characters) are offered
under a valid name and called by the real one; a tool whose schema is no JSON schema is left out;
non-text content is described rather than dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from modelyard.agents.tools.base import Tool, ToolError
from modelyard.config.schema import McpServer
from modelyard.types import ToolDefinition

log = logging.getLogger("modelyard.agents.tools")

#: what OpenAI, Anthropic and Ollama's OpenAI-compatible API accept as a function name
_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_NAME = 64


class _QuietSdkLog(logging.Filter):
    """The SDK logs each line a server prints to stdout that is no JSON-RPC with a traceback quoting the
    line — which may be the server printing its environment. Keep a one-line warning without the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}; the line is not shown)"
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_SDK_LOG = logging.getLogger("mcp.client.stdio")
if not any(isinstance(f, _QuietSdkLog) for f in _SDK_LOG.filters):
    _SDK_LOG.addFilter(_QuietSdkLog())


def _field(obj: Any, *names: str) -> Any:
    """mcp 1.x uses camelCase attributes, 2.x snake_case."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's (nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    leaf = _leaf(exc)
    first = str(leaf).strip().splitlines()[0] if str(leaf).strip() else ""
    return f"{type(leaf).__name__}: {first[:300]}" if first else type(leaf).__name__


def provider_name(remote: str, taken: set[str], label: str) -> str:
    """A name every provider accepts (``^[a-zA-Z0-9_-]{1,64}$``) and no other tool has."""
    name = remote if remote not in taken else f"{label}_{remote}"
    if not _VALID_NAME.match(name):
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:_MAX_NAME] or "tool"
    base, n = name, 2
    while name in taken:
        suffix = f"_{n}"
        name, n = base[:_MAX_NAME - len(suffix)] + suffix, n + 1
    return name


def _item_text(item: Any) -> str:
    kind = getattr(item, "type", "content")
    text = getattr(item, "text", None)
    if isinstance(text, str):
        return text
    resource = getattr(item, "resource", None)
    if resource is not None:  # embedded resource: its text, or what it is
        inner = getattr(resource, "text", None)
        uri = getattr(resource, "uri", "")
        return inner if isinstance(inner, str) else f"[resource {uri}: binary content not shown]"
    if kind == "resource_link":
        return f"[resource_link {getattr(item, 'uri', '')}]"
    mime = _field(item, "mime_type", "mimeType")
    return f"[{kind}{' ' + mime if mime else ''}: not shown to the model]"


def _result_text(result: Any) -> tuple[bool, str]:
    parts = [_item_text(item) for item in _field(result, "content") or []]
    structured = _field(result, "structured_content", "structuredContent")
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return bool(_field(result, "is_error", "isError")), "\n".join(parts)


def _valid_schema(schema: Any) -> bool:
    try:
        Draft202012Validator.check_schema(schema)
    except Exception:
        return False
    return isinstance(schema, dict)


async def mcp_tools(stack: AsyncExitStack, server: McpServer, *, timeout: float, taken: set[str],
                    cwd: Path | None = None) -> list[Tool]:
    """Start ``server`` (closed with ``stack``) and wrap its tools."""
    params = StdioServerParameters(command=server.command, args=list(server.args), env=dict(server.env) or None,
                                   cwd=str(cwd) if cwd else None)
    own = AsyncExitStack()  # closed here if the start fails, so the SDK's task groups wrap nothing of ours
    errlog = own.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - closed by the stack
    try:
        streams = await own.enter_async_context(stdio_client(params, errlog=errlog))
        session = await own.enter_async_context(ClientSession(streams[0], streams[1]))
        async with asyncio.timeout(server.start_timeout):
            await session.initialize()
            listed = await session.list_tools()
    except Exception as exc:  # died at start, closed the connection, listed tools the SDK refuses...
        problem = (f"no answer within {server.start_timeout:g} s (tools.mcp[].start_timeout)"
                   if isinstance(_leaf(exc), TimeoutError) else _describe(exc))
        with contextlib.suppress(Exception):  # what the dead server left behind
            await own.aclose()
        raise ToolError(f"MCP server '{server.command}' could not start: {problem}") from None
    stack.push_async_exit(own)
    label = Path(server.command).stem if not server.args else Path(server.args[-1]).stem
    tools = []
    for spec in listed.tools:
        remote = spec.name
        parameters = _field(spec, "input_schema", "inputSchema") or {"type": "object", "properties": {}}
        if not _valid_schema(parameters):
            log.warning("MCP server '%s': tool '%s' left out: its input schema is not a valid JSON schema",
                        server.command, remote[:100])
            continue
        name = provider_name(remote, taken, label)
        taken.add(name)

        async def run(args: dict[str, Any], remote: str = remote) -> str:
            try:
                async with asyncio.timeout(timeout):
                    result = await session.call_tool(remote, args)
            except TimeoutError:
                raise
            except Exception as exc:  # the server died or broke the protocol mid-call
                raise ToolError(f"the MCP server failed ({_describe(exc)}); its tools may be unavailable "
                                "for the rest of this request") from None
            is_error, text = _result_text(result)
            if is_error:
                raise ToolError(text or "the MCP tool reported an error")
            return text

        tools.append(Tool(ToolDefinition(name, spec.description or "", parameters), run))
    return tools
