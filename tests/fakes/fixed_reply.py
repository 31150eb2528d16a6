"""A raw loopback server that answers every request on a kept-alive connection with the same bytes, as some proxies'
own replies are always the same (Envoy's 503, LiteLLM's 408 for its upstream's timeout); and one request of an
agent whose primary is such a server, its fallback a fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from typing import Any

from modelyard.router import Router
from modelyard.router.router import Routed
from modelyard.types import ChatRequest, Message
from tests.fakes.openai_compat import OpenAIServer
from tests.helpers import make_config


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body off a kept-alive connection (the body by its content-length): its head."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return head


class FixedReply:
    """The connection handler (for ``asyncio.start_server``): ``response`` to every request; ``asked`` counts them."""

    def __init__(self, response: bytes):
        self.response = response
        self.asked = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_request(reader)
                self.asked += 1
                writer.write(self.response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def routed_once(reply: FixedReply, defaults: dict[str, Any]) -> Routed:
    """One request of an agent whose primary answers with ``reply`` and whose fallback answers "backup answer"."""
    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    with OpenAIServer(models=["backup"], reply_text="backup answer") as backup:
        config = make_config(
            {"primary": {"provider": "openai", "model": "local",
                         "endpoint": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"},
             "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
            {"agent": {"primary": "primary", "fallbacks": ["backup"]}}, defaults=defaults)
        router = Router(config)
        try:
            return await router.complete("agent", ChatRequest(messages=[Message("user", "Weather?")]))
        finally:
            await router.aclose()
            server.close()
