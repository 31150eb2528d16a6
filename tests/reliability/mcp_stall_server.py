"""An MCP server (stdio) whose one tool never returns: the toolbox must bound the wait."""

from __future__ import annotations

import time

try:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # pragma: no cover - mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server

server = Server("modelyard-stall")


@server.tool()
def stall(seconds: int) -> str:
    """Never comes back in time."""
    time.sleep(seconds)
    return "too late"


if __name__ == "__main__":
    server.run()
