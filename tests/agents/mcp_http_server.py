"""A real MCP server over HTTP, built with the SDK's own server (MCPServer, formerly FastMCP), on loopback.

``python mcp_http_server.py [streamable-http|sse]``: serves ``/mcp`` (or ``/sse``) on a free port and prints
``PORT <n>`` once it listens. With ``MCP_HTTP_TOKEN`` set, every request needs ``Authorization: Bearer <it>``
(401 otherwise); ``MCP_PORT`` picks the port (the same one again: a server restarted); ``MCP_IDLE`` sets
the seconds after which an idle session is forgotten (then 404).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import uvicorn

try:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # pragma: no cover - mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server

server = Server("modelyard-http-test")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after `seconds`."""
    await asyncio.sleep(seconds)
    return "late"


def extra() -> str:
    """Added by grow."""
    return "extra ran"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `extra` and says the tool list changed."""
    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


def guarded(app: Any, token: str) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)
    return asgi


def main() -> None:
    transport = sys.argv[1] if len(sys.argv) > 1 else "streamable-http"
    if transport == "sse":
        app = server.sse_app()
    else:
        idle = float(os.environ.get("MCP_IDLE", "0")) or None
        app = server.streamable_http_app(session_idle_timeout=idle) if idle else server.streamable_http_app()
    if os.environ.get("MCP_HTTP_TOKEN"):
        app = guarded(app, os.environ["MCP_HTTP_TOKEN"])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("MCP_PORT", "0"))))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them: the port is usable from here
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
