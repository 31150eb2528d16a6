"""Plays a pre-rendered answer onto the wire while applying one fault.

Protocol modules only describe *what* to send (a `Rendering`); this module decides *how*
(timing, truncation, hangs, aborted connections), so every protocol misbehaves alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from tests.fakes.faults import INVALID_UTF8_BYTES, INVALID_UTF8_MARK, SHAPE_FAULTS, Fault, FaultKind


class DropConnection(Exception):
    """Raised after the response started: uvicorn then closes the socket mid-body."""


@dataclass
class Rendering:
    """A complete answer in one protocol, ready to be played (streamed or not)."""

    stream: bool
    media_type: str
    chunks: list[bytes] = field(default_factory=list)
    first_token_index: int = 0
    body: bytes = b""
    token_count: int = 1
    error_chunk: bytes = b""
    invalid_chunk: bytes = b""
    invalid_body: bytes = b'{"id": "broken", "choices": [ this is not json'
    error_status: int = 500
    error_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_bytes(payload: Any, compact: bool = True) -> bytes:
    """UTF-8 JSON; a lone UTF-16 surrogate is written as its ``\\uXXXX`` escape, as JavaScript's
    JSON.stringify does (a raw one cannot be encoded as UTF-8 at all)."""
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(payload, separators=separators, ensure_ascii=False)
    if not text.isascii():
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode()


class _Watched:
    """An ASGI app whose ``_play`` learns (``gone``) when the client leaves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
        try:
            await self._play(send, gone)
        finally:
            watcher.cancel()

    async def _play(self, send: Send, gone: asyncio.Event) -> None:
        raise NotImplementedError


class Playback(_Watched):
    """ASGI app sending a Rendering under a Fault; returns early when the client leaves."""

    def __init__(
        self, rendering: Rendering, fault: Fault, stopping: asyncio.Event, chunk_interval: float
    ) -> None:
        self.r = rendering
        self.fault = fault
        self.stopping = stopping
        self.chunk_interval = chunk_interval

    async def _pause(self, seconds: float | None, gone: asyncio.Event) -> bool:
        """Sleep (None = forever); True when the client left or the server is stopping."""
        if seconds is not None and seconds <= 0:
            return gone.is_set() or self.stopping.is_set()
        return await _either(gone, self.stopping, seconds)

    async def _play(self, send: Send, gone: asyncio.Event) -> None:
        kind = self.fault.kind
        if kind is FaultKind.HANG_BEFORE_HEADERS:
            await self._pause(None, gone)
            return
        if kind is FaultKind.DELAY and await self._pause(self.fault.seconds, gone):
            return
        if self.r.stream:
            await self._play_stream(send, gone)
        else:
            await self._play_body(send, gone)

    def _headers(self, media_type: str, length: int | None = None, **extra: str) -> list[tuple[bytes, bytes]]:
        headers = {"content-type": media_type, **self.r.headers, **extra}
        if length is not None:
            headers["content-length"] = str(length)
        else:
            headers.setdefault("cache-control", "no-cache")
        return [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def _play_stream(self, send: Send, gone: asyncio.Event) -> None:
        r, kind = self.r, self.fault.kind
        head = r.first_token_index
        after = max(self.fault.after_chunks, 0)
        interval = self.fault.interval if kind is FaultKind.DRIP else self.chunk_interval
        chunks = list(r.chunks)
        hang_at_end = False
        drop_at_end = False
        if kind is FaultKind.HANG_AFTER_FIRST_TOKEN:
            chunks, hang_at_end = chunks[: head + 1], True
        elif kind is FaultKind.ERROR_MIDSTREAM:
            chunks = [*chunks[: head + after], r.error_chunk]
        elif kind is FaultKind.DROP_MIDSTREAM:
            chunks, drop_at_end = chunks[: head + after], True
        elif kind is FaultKind.INVALID_JSON:
            chunks = [*chunks[:head], r.invalid_chunk, *chunks[head + 1 :]]

        media_type, extra = r.media_type, {}
        if kind is FaultKind.NOT_A_STREAM:
            media_type, body = not_a_stream(self.fault.variant, r.media_type)
            chunks = [body]
        elif kind in SHAPE_FAULTS:
            chunks, extra = reshape(chunks, self.fault, sse=r.media_type.startswith("text/event-stream"))
        await send({"type": "http.response.start", "status": 200, "headers": self._headers(media_type, **extra)})
        for index, chunk in enumerate(chunks):
            if index and interval and await self._pause(interval, gone):
                return
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if drop_at_end:
            await asyncio.sleep(0.01)  # let the chunks reach the socket before the abort
            raise DropConnection
        if hang_at_end:
            await self._pause(None, gone)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _play_body(self, send: Send, gone: asyncio.Event) -> None:
        r, kind = self.r, self.fault.kind
        status, body, media_type = 200, r.body, r.media_type
        if kind is FaultKind.DRIP and await self._pause(self.fault.interval * max(r.token_count, 1), gone):
            return
        if kind is FaultKind.ERROR_MIDSTREAM:
            status, body, media_type = r.error_status, r.error_body, "application/json"
        elif kind is FaultKind.INVALID_JSON:
            body = r.invalid_body
        elif kind is FaultKind.NOT_A_STREAM:
            media_type, body = not_a_stream(self.fault.variant, media_type)
        elif kind is FaultKind.INVALID_UTF8:
            body = body.replace(_MARK, INVALID_UTF8_BYTES)
        elif kind is FaultKind.GZIP:
            body, extra = gzip_body(body), {"content-encoding": "gzip"}
            await send({"type": "http.response.start", "status": status,
                        "headers": self._headers(media_type, len(body), **extra)})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        elif kind in (FaultKind.HANG_AFTER_FIRST_TOKEN, FaultKind.DROP_MIDSTREAM):
            cut = 12 if kind is FaultKind.HANG_AFTER_FIRST_TOKEN else max(len(body) // 2, 1)
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": self._headers(media_type, len(body)),
            }
            await send(start)
            await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
            if kind is FaultKind.DROP_MIDSTREAM:
                await asyncio.sleep(0.01)
                raise DropConnection
            await self._pause(None, gone)
            return
        await send(
            {"type": "http.response.start", "status": status, "headers": self._headers(media_type, len(body))}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


_MARK = INVALID_UTF8_MARK.encode()
_KEEPALIVE_SSE = b": OPENROUTER PROCESSING\n\n"
_NO_SPACE = re.compile(rb"(^|\n)data: ")
_CAPTIVE_PAGE = (b"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
                 b"<title>Sign in to continue</title></head>\n<body><h1>Sign in to continue</h1>"
                 b"<p>This network requires you to sign in.</p></body>\n</html>\n")


class RawPlayback(_Watched):
    """ASGI app for a ``raw`` fault: its status, headers and chunks as given, then its ending."""

    def __init__(self, fault: Fault, stopping: asyncio.Event) -> None:
        self.fault = fault
        self.stopping = stopping

    async def _play(self, send: Send, gone: asyncio.Event) -> None:
        f = self.fault
        headers = [(k.lower().encode(), v.encode()) for k, v in f.headers]
        await send({"type": "http.response.start", "status": f.code, "headers": headers})
        for index, chunk in enumerate(f.chunks):
            if index and f.interval and await _either(gone, self.stopping, f.interval):
                return
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if f.variant == "drop":
            await asyncio.sleep(0.01)  # let the chunks reach the socket before the abort
            raise DropConnection
        if f.variant == "hang":
            await _either(gone, self.stopping, None)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _either(gone: asyncio.Event, stopping: asyncio.Event, seconds: float | None) -> bool:
    """Sleep (None = forever) until the client leaves or the server stops; True if one of them did."""
    waiters = [asyncio.ensure_future(gone.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return gone.is_set() or stopping.is_set()


def not_a_stream(variant: str, media_type: str) -> tuple[str, bytes]:
    """A 200 body that is not the stream asked for: (content-type, body)."""
    if variant == "json":
        return "application/json", b'{"status":"ok","message":"service is up"}'
    if variant == "json_error":
        if media_type.startswith("application/x-ndjson"):  # Ollama's documented error object
            return "application/json", b'{"error":"llama runner process has terminated: signal: killed"}'
        # OpenRouter: once processing started, errors come back under 200 with a numeric code
        return "application/json", b'{"error":{"code":502,"message":"Provider returned error"}}'
    return "text/html; charset=utf-8", _CAPTIVE_PAGE


def gzip_body(body: bytes) -> bytes:
    comp = zlib.compressobj(wbits=31)
    return comp.compress(body) + comp.flush()


def reshape(chunks: list[bytes], fault: Fault, *, sse: bool) -> tuple[list[bytes], dict[str, str]]:
    """Apply a byte-level shape fault to a stream's chunks; returns the chunks and extra headers."""
    kind = fault.kind
    if kind is FaultKind.INVALID_UTF8:
        return [c.replace(_MARK, INVALID_UTF8_BYTES) for c in chunks], {}
    if kind is FaultKind.LINE_ENDINGS:
        ending = b"\r\n" if fault.variant == "crlf" else b"\r"
        return [c.replace(b"\n", ending) for c in chunks], {}
    if kind is FaultKind.NO_SPACE and sse:
        return [_NO_SPACE.sub(rb"\1data:", c) for c in chunks], {}
    if kind is FaultKind.KEEPALIVE:
        pause = _KEEPALIVE_SSE if sse else b"\n"
        return [piece for c in chunks for piece in (pause, c)] + [pause], {}
    if kind is FaultKind.GZIP:
        comp = zlib.compressobj(wbits=31)
        out = [comp.compress(c) + comp.flush(zlib.Z_SYNC_FLUSH) for c in chunks]
        return [*out, comp.flush()], {"content-encoding": "gzip"}
    return chunks, {}  # the other shape faults are rendered by the protocol itself


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
