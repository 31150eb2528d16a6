"""Fetch a URL (off unless ``tools.fetch: true``): http(s) only, time-bounded, size-capped."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from modelyard.agents.tools.base import Tool, ToolError, schema
from modelyard.types import ToolDefinition


def fetch_tool(timeout: float, limit: int) -> Tool:
    async def fetch_url(args: dict[str, Any]) -> str:
        url = args["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolError("only http and https URLs can be fetched")
        import httpx  # here, not at the top: every command imports the tools, few run this one (~60 ms of start)

        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client, \
                    client.stream("GET", url) as resp:
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        break
        except httpx.HTTPError as exc:
            raise ToolError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
        text = body[:limit].decode(resp.encoding or "utf-8", errors="replace")
        head = f"HTTP {resp.status_code} {resp.headers.get('content-type', '')}".strip()
        return f"{head}\n{text}" + (f"\n[truncated at {limit} bytes]" if len(body) > limit else "")

    return Tool(ToolDefinition("fetch_url", "Fetch a web page or API response by URL (GET).",
                               schema({"url": {"type": "string"}}, ["url"])), fetch_url)
