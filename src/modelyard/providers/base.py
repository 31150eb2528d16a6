"""The one interface every provider implements.

A provider knows one wire protocol and nothing about chains, slots or logs: it turns a
:class:`ChatRequest` into a stream of :class:`Chunk` and every failure into a
:class:`ProviderError`. First-token and idle timeouts are enforced by the router around
this stream, the same way for every provider; the provider only enforces connect time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.types import ChatRequest, ChatResponse, Chunk


class Provider(ABC):
    def __init__(self, name: str, config: ModelConfig):
        self.name = name
        self.config = config
        self.model_id = config.model or name

    def unavailable_reason(self) -> str | None:
        """Why this model cannot be used at all right now (e.g. missing credentials), or None."""
        if self.config.api_key_env and not self.config.api_key():
            return f"environment variable {self.config.api_key_env} is not set"
        return None

    @abstractmethod
    def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        """Yield the answer as chunks; raise ProviderError on any failure."""

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> ChatResponse:
        response = ChatResponse()
        async for chunk in self.stream(request, timeouts):
            response.add(chunk)
        return response

    async def warmup(self, keep_alive: str | None = None) -> None:  # noqa: B027 - optional hook
        """Load the model so the first real request does not pay the cold start."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory."""
