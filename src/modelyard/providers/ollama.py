"""Ollama's native ``/api/chat``: NDJSON streaming, object-valued tool arguments, ``think``,
``keep_alive``, and errors that arrive mid-stream as ``{"error": ...}`` under HTTP 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelyard.config.schema import Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.http import HttpProvider, loads, openai_tools, parse_arguments
from modelyard.types import ChatRequest, Chunk, Message, ToolCall, Usage

DEFAULT_ENDPOINT = "http://127.0.0.1:11434"


def _extract_error(body: Any) -> tuple[str, str]:
    return "", str(body.get("error", ""))


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    return out


class OllamaProvider(HttpProvider):
    default_endpoint = DEFAULT_ENDPOINT

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [_message(m) for m in request.messages],
            "stream": True,
        }
        if request.tools:
            body["tools"] = openai_tools(request.tools)
        if request.thinking is not None:
            body["think"] = request.thinking
        if request.json_output:
            body["format"] = "json"
        options: dict[str, Any] = {}
        if request.max_tokens:
            options["num_predict"] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if self.config.context:
            options["num_ctx"] = self.config.context
        if options:
            body["options"] = options
        if self.config.keep_alive:
            body["keep_alive"] = self.config.keep_alive
        return body

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        async with self.client.stream("/api/chat", self.body(request), timeouts, _extract_error) as resp:
            done = False
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                data = loads(line, "Ollama stream line")
                if not isinstance(data, dict):
                    raise ProviderError(Reason.MALFORMED_RESPONSE, "Ollama stream line is not an object")
                if "error" in data:
                    raise ProviderError(Reason.STREAM_ERROR, f"Ollama error mid-stream: {data['error']}")
                message = data.get("message") or {}
                if message.get("thinking"):
                    yield Chunk("thinking", text=message["thinking"])
                if message.get("content"):
                    yield Chunk("text", text=message["content"])
                for call in message.get("tool_calls") or []:
                    fn = call.get("function") or {}
                    if not fn.get("name"):
                        raise ProviderError(Reason.MALFORMED_RESPONSE, "tool call without a name")
                    yield Chunk("tool_call", tool_call=ToolCall(
                        name=fn["name"], arguments=parse_arguments(fn.get("arguments")), id=call.get("id", "")))
                if data.get("done"):
                    done = True
                    yield Chunk("usage", usage=Usage(int(data.get("prompt_eval_count") or 0),
                                                     int(data.get("eval_count") or 0)))
                    yield Chunk("done", stop_reason=str(data.get("done_reason") or "stop"))
                    break
            if not done:
                raise ProviderError(Reason.CONNECTION_DROPPED, "Ollama stream ended without done:true")

    async def warmup(self, keep_alive: str | None = None) -> None:
        """Ollama preloads a model on a chat request that has no messages."""
        body: dict[str, Any] = {"model": self.model_id, "messages": []}
        if keep_alive or self.config.keep_alive:
            body["keep_alive"] = keep_alive or self.config.keep_alive
        status, _ = await self.client.request_json("POST", "/api/chat", body, timeout=300.0)
        if status >= 400:
            raise ProviderError(Reason.SERVER_ERROR, f"warm-up failed: HTTP {status}")

