"""The router stops reading a model's answer once its text reaches one of the client's stop sequences.

The backend is sent them where it takes them (ChatRequest.stop: the first 4 to an OpenAI-compatible server, none to
one that refused the field, no whitespace-only one to Claude) and the Messages API's are not sent at all
(ChatRequest.cut_at: its answer names the sequence it stopped at, which a backend that stopped there itself does not
say). A sequence the backend did not know is met in the text; the gateway cuts the text there (gateway/stops.py),
and everything the model would write after it is never sent. So its stream is closed at once rather than read to
``max_tokens`` (one whose server was sent the sequence is read on briefly for the usage it sends at its end:
:func:`usage_after`): the server stops generating (llama-server, Ollama and OpenAI stop on a closed connection; the
embedded model's worker is stopped), the model's slot is freed for the next request, and the routing log counts the
time and tokens the answer really took. The answer is an answer (outcome ``ok``), its finish reason
``stop_sequence`` — Anthropic's word for exactly this — and the attempt's detail says which sequence closed it.

Not with tools offered: a call may follow the text, and the gateway does not cut an answer with calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator

from modelyard.providers.http import AFTER_END
from modelyard.router.watchdog import Watchdog
from modelyard.types import ChatRequest, ChatResponse, Chunk

#: the routing log's finish reason of an answer whose stream the router closed at a stop sequence
STOP_SEQUENCE = "stop_sequence"


def watched(request: ChatRequest) -> tuple[str, ...]:
    """The stop sequences whose first occurrence in the text ends the answer: the client's (sent or not), non-empty;
    none when tools are offered."""
    if request.tools:
        return ()
    return tuple(s for s in (*(request.stop or ()), *(request.cut_at or ())) if s)


class StopWatch:
    """One attempt's text, piece by piece: has it reached a stop sequence yet? Only the last few characters (one
    fewer than the longest sequence) are kept, so a sequence split across pieces is still seen."""

    __slots__ = ("_keep", "_sequences", "_tail", "matched")

    def __init__(self, sequences: tuple[str, ...]):
        self._sequences = sequences
        self._keep = max(map(len, sequences)) - 1
        self._tail = ""
        #: the sequence the text reached first (the earliest in the text), once it did
        self.matched: str | None = None

    def reached(self, text: str) -> bool:
        seen = self._tail + text
        found = [(at, s) for s in self._sequences if (at := seen.find(s)) >= 0]
        if found:
            self.matched = min(found)[1]
            return True
        self._tail = seen[-self._keep:] if self._keep else ""
        return False


def sent(request: ChatRequest, sequence: str | None) -> bool:
    """Was ``sequence`` one the backend was asked to stop at (``stop``, not the Messages API's ``cut_at``)? It then
    stopped there itself, and what it sends after the sequence is its end: usage, a finish reason."""
    return sequence is not None and sequence in (request.stop or ())


async def usage_after(gen: AsyncGenerator[Chunk, None], watchdog: Watchdog, loop: asyncio.AbstractEventLoop,
                      buffer: ChatResponse) -> None:
    """Read a stream closed at a stop sequence its server was sent on, for :data:`AFTER_END` at most, for the usage
    the server sends at its end; the text after the sequence is not taken. TGI writes the sequence it stopped at
    (huggingface/text-generation-inference#1724) and its usage chunk at once after it (its router's ChatState::push):
    closed at the sequence, the tokens were logged as estimates. A server that goes on (one that refused ``stop``)
    costs that bound, no more; one that breaks meanwhile leaves the answer as it was."""
    limit = loop.time() + AFTER_END
    while True:
        watchdog.arm(limit)
        try:
            chunk = await gen.__anext__()
        except asyncio.CancelledError:
            if watchdog.claim():
                return
            raise
        except Exception:  # its end (StopAsyncIteration) or a break after the answer: the answer stands
            return
        watchdog.disarm()
        if chunk.kind == "usage":
            buffer.add(chunk)
        elif chunk.kind == "done":
            return


def closed_at(buffer: ChatResponse, sequence: str, tokens_in: int, tokens_out: int) -> str:
    """Mark an answer whose stream was closed at ``sequence``: its finish reason, and its usage where the server never
    got to report it (the counts the attempt was logged with: the pieces that arrived, the prompt's estimate), so the
    client's ``usage`` says what was generated, not 0. Returns the routing log's note."""
    buffer.stop_reason = STOP_SEQUENCE
    usage = buffer.usage
    if usage.output_tokens < tokens_out:  # Anthropic's message_start says 1 output token, its message_delta the rest
        buffer.usage = dataclasses.replace(usage, input_tokens=usage.input_tokens or tokens_in,
                                           output_tokens=tokens_out)
    return f"stream closed at the stop sequence {sequence!r}, which its server was not sent or went past"
