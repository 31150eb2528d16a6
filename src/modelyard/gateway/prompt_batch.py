"""A ``/v1/completions`` list of prompts answered side by side, each its own routed request, in order.

The prompts of one body (the ``openai`` SDK's ``completions.create(prompt=[…])``, LangChain's ``OpenAI`` LLM batching
its ``generate``) were asked one after another: a list of eight took eight answers' time on a model with four slots
idle. Each prompt is still its own request through the router — its own slot, queue bound, chain and routing row — so
running them at once passes no bound; the batch keeps no more of them out than the agent's first model has slots
(``max_concurrent``), so a long list does not fill the model's queue ahead of other clients. The spare-slot lending of
an embeddings batch (router/spare_slots.py) does not fit here: that is one attempt on one model whose calls must all
come from it, these are requests that may each fall back on their own. The first prompt no model could answer ends
the batch: the others are cancelled and the client gets that failure, never a list with a choice missing. Streamed,
the answers go choice by choice in order, and the prompts after the first are asked at once and read ahead
(:class:`ReadAhead`), so each is ready or under way when its turn comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING

from modelyard.providers.side_by_side import GiveBack, side_by_side
from modelyard.router.router import Routed
from modelyard.types import ChatRequest, Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway


def batch_width(gw: Gateway, agent: str, count: int) -> int:
    """How many of ``count`` prompts go out at once: the agent's first model's slots (1 when it is not known)."""
    cfg = gw.router.config.agents.get(agent)
    model = gw.router.config.models.get(cfg.chain[0]) if cfg is not None and cfg.chain else None
    return max(1, min(count, model.max_concurrent if model is not None else 1))


async def answered(gw: Gateway, agent: str, asks: Sequence[tuple[ChatRequest, str]], width: int) -> list[Routed]:
    """Every ``(request, request id)``'s routed answer, in order, at most ``width`` out at once; the first
    :class:`~modelyard.router.ChainExhausted` (or other failure) cancels the rest and is raised."""

    async def one(i: int) -> Routed:
        chat, request_id = asks[i]
        return await gw.router.complete(agent, chat, request_id=request_id)

    return await side_by_side(len(asks), one, _lanes(width - 1))


async def _lanes(count: int) -> AsyncGenerator[GiveBack, None]:
    """``count`` lanes beyond the first: each prompt takes its model's slot itself, through the router."""
    for _ in range(count):
        yield _nothing


async def _nothing() -> None:
    """No slot to give back: a prompt's routed request holds and frees its own."""


class ReadAhead:
    """A later prompt of a streamed list, asked at once and read ahead into a queue by its own task while the prompts
    before it are sent: the client still gets the answers choice by choice, in order, and a later one is ready (or
    under way) when its turn comes, instead of asked only then. Read like a :class:`~modelyard.router.RoutedStream`:
    its chunks, then the end — or the failure (:class:`~modelyard.router.ChainExhausted`, a stream interrupted) at
    the point it came. ``gate`` bounds how many are out at once (the first model's slots, the first prompt's
    included); ``failed``, shared by the list's read-aheads, holds the first failure: a prompt whose turn at the gate
    comes after it is not asked (the stream ends at the failure, so its answer would never be sent)."""

    def __init__(self, gw: Gateway, agent: str, chat: ChatRequest, request_id: str, gate: asyncio.Semaphore,
                 failed: list[Exception]):
        self._stream = gw.router.stream(agent, chat, request_id=request_id)
        self.record = self._stream.record
        self.response = self._stream.response
        self._read: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._reading(gate, failed))

    async def _reading(self, gate: asyncio.Semaphore, failed: list[Exception]) -> None:
        try:
            async with gate:
                if failed:
                    self._read.put_nowait(failed[0])
                    return
                async for chunk in self._stream:
                    self._read.put_nowait(chunk)
            self._read.put_nowait(None)
        except Exception as exc:  # handed to the reader, raised where its answer stops
            failed.append(exc)
            self._read.put_nowait(exc)
        finally:
            await self._stream.aclose()

    def __aiter__(self) -> ReadAhead:
        return self

    async def __anext__(self) -> Chunk:
        got = await self._read.get()
        if got is None:
            self._read.put_nowait(None)  # the end, for any later read too
            raise StopAsyncIteration
        if isinstance(got, BaseException):
            raise got
        return got

    async def aclose(self) -> None:
        """Stop reading (the client went away, or an earlier prompt failed): the routed request is cancelled."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
