"""A buffered answer from an OpenAI-compatible server takes the text deltas of one network read as one
chunk (issue #15: each chunk is a step through the provider, the shape checks and the router); a stream to
a client keeps one chunk per delta; and a cut-off answer still counts every delta as a token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from tests.helpers import make_config

from modelyard.errors import Reason
from modelyard.providers import build_provider
from modelyard.router import ChainExhausted, Router
from modelyard.types import ChatRequest, Chunk, Message

REQ = ChatRequest(messages=[Message("user", "hi")])
WORDS = ["Hello", " from", " one", " read", "."]


def sse(*, done: bool) -> bytes:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    events = [dict(base, choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}]) for w in WORDS]
    if done:
        events.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        events.append(dict(base, choices=[], usage={"prompt_tokens": 3, "completion_tokens": 5}))
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, bool]]]:
    """Answers every request with all its events in one write; ``hang``: no end, the connection kept open."""
    mode = {"hang": False}
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        body = sse(done=not mode["hang"])
        if mode["hang"]:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n" + body)
            held.append(writer)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", mode
    for w in held:
        w.close()
    srv.close()
    await srv.wait_closed()


def config(url: str):  # type: ignore[no-untyped-def]
    return make_config({"m": {"provider": "openai", "model": "m", "endpoint": url}}, {"a": {"primary": "m"}},
                       defaults={"timeouts": {"first_token": 1, "idle": 0.3, "total": 5},
                                 "retries": {"attempts": 0}})


async def collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [c async for c in chunks]


async def test_a_buffered_answer_gets_one_read_as_one_chunk_and_a_stream_one_chunk_per_delta(server) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    cfg = config(url)
    provider = build_provider("m", cfg.models["m"])
    tm = cfg.timeouts_for("a", "m")
    try:
        buffered = [c for c in await collect(provider.chunks(REQ, tm, buffered=True)) if c.kind == "text"]
        streamed = [c for c in await collect(provider.chunks(REQ, tm)) if c.kind == "text"]
    finally:
        await provider.aclose()
    assert [(c.text, c.pieces) for c in buffered] == [("".join(WORDS), 5)]
    assert [(c.text, c.pieces) for c in streamed] == [(w, 1) for w in WORDS]


async def test_a_cut_off_buffered_answer_counts_every_delta_it_got(server) -> None:  # type: ignore[no-untyped-def]
    url, mode = server
    mode["hang"] = True  # five deltas in one read, then silence: the idle bound ends the attempt
    router = Router(config(url))
    try:
        with pytest.raises(ChainExhausted) as info:
            await router.complete("a", REQ)
    finally:
        await router.aclose()
    attempt = info.value.record.attempts[0]
    assert attempt.reason == Reason.IDLE_TIMEOUT and attempt.tokens_out == 5
