"""What the HTTP providers share: one pooled client each, and one mapping from wire failures
(status codes, transport errors, bad JSON) to :class:`ProviderError` reasons.

The transport is aiohttp: per call it costs ~0.25 ms against ~1.2 ms for httpx's own
transport on this class of machine (benchmarks/README.md), and a gateway hop is mostly that
call. A streamed POST to a plain ``http://`` endpoint with no proxy (a local server: the gateway's
usual hop) goes through the lean client of lean_http.py instead, ~22% fewer instructions a gateway
request (issue #15), which raises aiohttp's exceptions so that one mapping serves both.
Everything aiohttp-specific stays in this module and that one; providers see :class:`HttpClient`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import urllib.request
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from time import time
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import orjson

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from types import TracebackType

    import aiohttp
    from multidict import CIMultiDictProxy

    from modelyard.providers.lean_http import Pool
    from modelyard.providers.lean_http import Response as LeanResponse

    #: what a POST answers: aiohttp's response, or the lean client's (the part of it ``http.py`` reads)
    Response = aiohttp.ClientResponse | LeanResponse

from modelyard.config.schema import ModelConfig, Timeouts, redact_query
from modelyard.errors import ProviderError, Reason, json_problem, not_resolved
from modelyard.providers.absence import NOT_PULLED, not_pulled
from modelyard.providers.base import Provider
from modelyard.providers.coding import Readable, decoded, read_capped
from modelyard.providers.context_refusal import EXCEED_CONTEXT, refused_context
from modelyard.providers.error_words import error_words
from modelyard.providers.llama_swap import refusal_reason
from modelyard.providers.proxy_reset import proxy_reset
from modelyard.providers.retry_after import parse_retry_after, retry_after_ms
from modelyard.types import ToolCall, ToolDefinition, repair_text

Extract = Callable[[Any], tuple[str, str]]
#: a refusal and the body it refused -> the body to send once more at once, or None: the refusal stands
Refit = Callable[[ProviderError, dict[str, Any]], dict[str, Any] | None]
T = TypeVar("T")

log = logging.getLogger(__name__)


class _Aiohttp:
    """``aiohttp`` until it is first used: importing it is most of what ``modelyard models`` (which builds the
    providers to ask each whether it can be used, and sends nothing) spent importing, ~0.3 s. The first attribute
    read imports it and puts the module itself in this module's ``aiohttp``, so later reads (the request path) cost
    what they cost before."""

    def __getattr__(self, name: str) -> Any:
        import aiohttp as module

        globals()["aiohttp"] = module
        return getattr(module, name)


if not TYPE_CHECKING:
    aiohttp = _Aiohttp()


def _broke(exc: BaseException) -> str:
    """Why a body stopped after its headers, in words: aiohttp's ``ClientPayloadError`` said nothing to whoever reads
    the row; a body cut short of its framing is what a proxy's or load balancer's own timeout, or a server killed
    mid-answer, leaves (RFC 9112 §7.1, §8: an incomplete message)."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.http_exceptions.TransferEncodingError):
        return ("stream broke: the answer was cut off before its last chunk (the server, or a proxy in between, "
                "closed the connection mid-answer)")
    if isinstance(cause, aiohttp.http_exceptions.ContentLengthError):
        return ("stream broke: the answer was cut off short of its content-length (the server, or a proxy in "
                "between, closed the connection mid-answer)")
    return f"stream broke: {type(exc).__name__}"


def load_http_client() -> None:
    """Import ``aiohttp`` now, before any request is timed: a process that serves requests calls it at start-up. Left
    to the first request, its import (1.3–1.7 s here at load ~8) ran inside that attempt's first-token bound and on
    the event loop — a healthy model failed over (``first_token_timeout``, its breaker opened) and every other client
    waited."""
    aiohttp.ClientSession  # noqa: B018 - the first attribute read imports it (:class:`_Aiohttp`)
    import modelyard.providers.lean_http  # noqa: F401 - and the lean client (httptools), as its first use would


#: seconds the end of a whole answer is waited for from a server learned to leave its end marker out
#: (:attr:`HttpClient.no_end_marker`): the usage chunk or ``[DONE]`` follows the finish reason within milliseconds
END_GRACE = 0.5
#: characters of a JSON answer parsed to tell whether it was cut short, whatever its brackets' count
#: (:meth:`StreamResponse._json_body`)
WHOLE_PARSED = 2**18
#: how long the rest of a body is read after the answer's end marker (OpenAI's ``[DONE]``, Anthropic's
#: ``message_stop``) for usage a server sent after it (:func:`found_after_end`): the answer's end waits on it
AFTER_END = 0.05
#: the share of the idle bound an answer that may be whole (:attr:`StreamResponse.may_be_whole`) waits for more before
#: it ends: the rest is room for the router's own idle timer, started a moment before this one
MAY_BE_WHOLE_SHARE = 0.8


class StreamResponse:
    """A response whose body is read as it arrives, one line at a time, never more than ``limit``
    bytes of one line held (a proxy's 50 MB line fails fast instead of filling memory).

    The readers it hands out are closed by :meth:`aclose` (``HttpClient.stream`` calls it on the
    way out): a provider that stops reading at ``[DONE]`` leaves them suspended, and an async
    generator left to the garbage collector costs the event loop a thread-safe wake-up and a
    task each (two per request, measured, on the gateway's hot path)."""

    def __init__(self, response: Response, limit: int, grace: float = END_GRACE,
                 patience: float = END_GRACE):
        self._response = response
        self.limit = limit
        #: seconds the rest of the body is waited for once the answer is whole (:meth:`_after_answer`)
        self.grace = grace
        #: seconds the rest is waited for once the answer may be whole (:attr:`may_be_whole`): just under the idle
        #: bound, so a server that goes on after a pause is read on, and one that has ended is not lost to that bound
        self.patience = patience
        self._may_be_whole = False
        #: the grace ran out: the server left its end marker out and kept the connection open
        self.lingered = False
        self._deadline = 0.0
        self.status_code = response.status
        self.headers: CIMultiDictProxy[str] = response.headers
        self._readers: list[AsyncGenerator[Any, None]] = []
        self._answered = False
        #: answered or may be whole: each read waits a bounded time (:meth:`_after_answer`). One attribute read per
        #: read, as before there were two flags (issue #15)
        self._ending = False
        #: the unfinished last line of a body that broke (:meth:`_whole_before_break`)
        self._cut = ""
        #: set by a provider that asks again when a body is framed empty (an empty 200): the readers then end instead
        #: of raising malformed_response, and :attr:`empty` says the body was so
        self.quiet_if_empty = False
        self.empty = False
        #: the body ended inside its last line (no line ending after its last bytes) and that line was given as a
        #: line: of an event stream or JSON lines, a line cut short, when the providers cannot read it. Not said of a
        #: JSON document, which needs no line ending at its end (:meth:`_json_body`)
        self.ended_in_line = False

    @property
    def answered(self) -> bool:
        """Set by the provider once the answer is whole (its finish reason came): a connection that breaks after
        that (a reset before OpenAI's [DONE] or Anthropic's message_stop) loses nothing."""
        return self._answered

    @answered.setter
    def answered(self, value: bool) -> None:
        self._answered = value
        self._ending = value or self._may_be_whole

    @property
    def may_be_whole(self) -> bool:
        """Set by the provider when a finish reason came on a chunk that carried the answer too: its end, unless more
        comes (servers that put one on every chunk). Silence for :attr:`patience` ends the body, nothing learned."""
        return self._may_be_whole

    @may_be_whole.setter
    def may_be_whole(self, value: bool) -> None:
        self._may_be_whole = value
        self._ending = value or self._answered

    def aiter_lines(self) -> AsyncGenerator[str, None]:
        """Lines without their ending (LF, CRLF or a lone CR, as SSE allows); undecodable bytes
        become U+FFFD."""
        return self._opened(self._lines())

    def sse(self, what: str) -> AsyncGenerator[tuple[str, str], None]:
        """(field, value) for each ``event:``/``data:``/``id:``/``retry:`` line; comments (keep-alives
        such as ``: OPENROUTER PROCESSING``) and blank lines skipped, except the one that ends an event which named
        its type (:data:`DISPATCHED`, the field ``""``); ``data:`` with or without its space. A body that is not an
        event stream at all (an HTML page from a proxy, a JSON document) is a malformed response, found on its first
        line — not a dropped connection worth retrying."""
        return self._opened(self._events(what))

    def sse_batches(self, what: str) -> AsyncGenerator[list[tuple[str, str]], None]:
        """:meth:`sse`, a list at a time: the fields of the lines each read completed (never empty).
        For the hot path (issue #15): one step of an async generator per read, not two per line."""
        return self._opened(self._event_batches(what))

    def whole_json(self) -> AsyncGenerator[list[tuple[str, str]], None]:
        """A JSON body (a server that ignores ``stream: true`` answers the whole completion at once) as
        :meth:`sse_batches` would give it: one ``data`` event, then ``[DONE]``; its size bounded by ``limit``.
        A body labelled JSON that is an event stream (relays that set the wrong content-type, claude-code-router#45)
        is read as the event stream it is: it was one malformed JSON document."""
        return self._opened(self._whole())

    async def _whole(self) -> AsyncGenerator[list[tuple[str, str]], None]:
        batches = self._opened(self._line_batches())
        first: list[str] = []
        try:
            async for lines in batches:  # up to the first line that says what the body is
                first += lines
                if any(line.strip() for line in lines):
                    break
        except aiohttp.ClientPayloadError:
            if (whole := self._whole_before_break(first)) is None:
                raise
            yield whole
            return
        opening = next((line for line in first if line.strip()), "")
        if opening[:1] == ":" or opening.partition(":")[0] in _SSE_FIELDS:
            async for events in self._opened(self._event_batches("an event stream", self._opened(
                    _prepended(first, batches)))):
                yield events
            return
        yield await self._json_body(first, batches)

    async def _json_body(self, lines: list[str], batches: AsyncGenerator[list[str], None]) -> list[tuple[str, str]]:
        """``lines`` and the rest of the body as one JSON document (a ``data`` event, then ``[DONE]``). A chunked
        body whose closing chunk never came (the connection closed after the last byte of the document) is the
        document: it was connection_dropped, asked again for the same whole answer, and dropped again."""
        lines = list(lines)
        size = sum(len(line) + 1 for line in lines)
        try:
            async for more in batches:
                for line in more:
                    size += len(line) + 1
                    lines.append(line)
                if size > self.limit:
                    raise ProviderError(Reason.RESPONSE_TOO_LARGE,
                                        f"the answer passed {self.limit / 2**20:g} MB (max_response_mb)")
        except aiohttp.ClientPayloadError:
            if (whole := self._whole_before_break(lines)) is None:
                raise
            return whole
        if size > self.limit:
            raise ProviderError(Reason.RESPONSE_TOO_LARGE,
                                f"the answer passed {self.limit / 2**20:g} MB (max_response_mb)")
        self.ended_in_line = False  # a document's end needs no line ending
        text = "\n".join(lines)
        # a whole document ends in its closing bracket: only another end, or one whose outer brackets do not pair
        # up, is parsed here (an embeddings answer of tens of MB is not parsed twice). A body cut right after an inner
        # bracket ('{"choices": [{…}]') opens more of its outer kind than it closes: counted (in C, 1.3 ms per MB
        # measured, against 12 ms per MB for the parse), parsed only then — a string whose brackets do not pair (code
        # in an answer) costs that parse, which finds the document whole. It was malformed_response, never asked again
        # A body up to WHOLE_PARSED is parsed whatever its count says: one cut right after an inner bracket whose own
        # text holds unpaired brackets of the outer kind (an answer quoting code, "if (x) {") counts as balanced, and
        # was malformed_response — never asked again — where the same cut elsewhere is a dropped connection. A whole
        # answer of chat text is a few KB (tens of µs to parse); only the rare server that ignores stream: true
        # comes here, and an embeddings answer of MBs is not parsed twice
        opening, closing = ("[", "]") if text.lstrip()[:1] == "[" else ("{", "}")
        if (len(text) <= WHOLE_PARSED or text.rstrip()[-1:] not in ("}", "]")
                or text.count(opening) != text.count(closing)) and cut_json(text):
            # the body ended cleanly inside its document ("{", '{"id": "chatcmpl-1", "cho'): a server or proxy that
            # closed it early. It was malformed_response — never asked again, as if the same bytes would come back
            raise ProviderError(Reason.CONNECTION_DROPPED, f"the JSON answer ended before its document did, after "
                                f"{len(text)} character{'' if len(text) == 1 else 's'} (the server, or a proxy in "
                                "between, cut it short)")
        return [("data", text), ("data", "[DONE]")]

    def _whole_before_break(self, lines: list[str]) -> list[tuple[str, str]] | None:
        """The document a body that broke (a chunked one whose closing chunk never came) held whole: the lines
        read and the one the break left unfinished, if they are JSON; else None (the break lost part of it)."""
        text = "\n".join([*lines, self._cut] if self._cut else lines)
        if not text.strip() or try_loads(text.strip()) is NOT_JSON:
            return None
        self.answered = True
        return [("data", text), ("data", "[DONE]")]

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    def _opened(self, reader: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
        self._readers.append(reader)
        return reader

    async def aclose(self) -> None:
        """Close every reader handed out, outermost first (each runs its ``finally`` now)."""
        for reader in reversed(self._readers):
            await reader.aclose()
        self._readers.clear()

    async def _lines(self) -> AsyncGenerator[str, None]:
        async for lines in self._opened(self._line_batches()):
            for line in lines:
                yield line

    async def _line_batches(self) -> AsyncGenerator[list[str], None]:
        """The lines each read completed (a list, possibly empty), then what was left at the end. A byte
        order mark opening the body is dropped, as SSE says (.NET and some Windows servers write one)."""
        # made at the first read that is not all ASCII: an ASCII read is its own text, and the decoder's calls (five
        # Python frames a read and two more at the end) were the usual stream's whole use of it (issue #15)
        decoder: codecs.IncrementalDecoder | None = None
        after_cr = False  # the last read ended with CR: an LF opening the next ends the same line
        parts: list[str] = []
        held = 0
        empty = True
        content: Readable = self._response.content
        if "content-encoding" in self.headers:  # undone here, not by aiohttp (coding.py): one lookup a request
            content = decoded(self._response.content, self.headers["content-encoding"])
        try:
            while True:
                # readany, not iter_any: the same reads without a wrapper's coroutine each (issue #15)
                piece = await (self._after_answer(content) if self._ending else content.readany())
                if not piece:
                    break
                if decoder is None and piece.isascii():
                    text = piece.decode()  # as the decoder would: no byte order mark, no sequence cut short, in ASCII
                else:
                    if decoder is None:  # the mark is dropped only where the body opens
                        decoder = codecs.getincrementaldecoder("utf-8-sig" if empty else "utf-8")("replace")
                    text = decoder.decode(piece)
                empty = False
                if after_cr and text:
                    after_cr = False
                    if text[0] == "\n":  # a CRLF split between two reads is one line ending, not two: the blank
                        text = text[1:]  # line between would end an SSE event early (DISPATCHED)
                if "\r" in text:
                    after_cr = text[-1] == "\r"
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                *complete, text = text.split("\n")  # one pass per piece, not one copy of the rest per line
                if complete:
                    if parts:
                        complete[0] = "".join(parts) + complete[0]
                        parts.clear()
                    held = 0
                    yield complete
                if text:
                    parts.append(text)
                    held += len(text)
                    if held > self.limit:
                        raise ProviderError(Reason.RESPONSE_TOO_LARGE, f"one line of the answer passed "
                                            f"{self.limit / 2**20:g} MB (max_response_mb)")
        except aiohttp.ClientPayloadError:
            self._cut = "".join(parts) + _rest(decoder)  # the line the break left unfinished
            raise
        if empty and self._framed_empty():
            if self.quiet_if_empty:
                self.empty = True
                return
            raise ProviderError(Reason.MALFORMED_RESPONSE, f"HTTP {self.status_code} with an empty body: no answer")
        rest = "".join(parts) + _rest(decoder)
        if rest:
            self.ended_in_line = True
            yield [rest]

    async def _after_answer(self, content: Readable) -> bytes:
        """The next read once the answer is whole (its finish reason came, :attr:`answered`): what more comes is its
        end marker (``[DONE]``, Anthropic's ``message_stop``) or a usage chunk, waited for :attr:`grace` at most; then
        the body counts as ended (``b""``). A proxy whose upstream leaves ``[DONE]`` out keeps the connection open
        with keep-alive comments (bifrost#6784): the whole answer was lost to the router's idle bound, once per server
        and process before that loss was learned. Comments do not move the deadline; data does (servers that put a
        finish reason on every chunk: litellm#2195, open-webui#16377, go on being read)."""
        loop = asyncio.get_running_loop()
        if not self._deadline:
            self._deadline = loop.time() + (self.grace if self._answered else self.patience)
        try:
            async with asyncio.timeout_at(self._deadline):
                piece = await content.readany()
        except TimeoutError:
            # only a whole answer's lost end marker is learned: a pause after a finish reason that came with text
            # teaches nothing (a server that puts one on every chunk would have its later answers cut short)
            self.lingered = self._answered
            return b""
        if any(line.strip() and line.lstrip()[:1] != b":" for line in piece.splitlines()):
            self._deadline = 0.0  # an event, not a keep-alive: the answer goes on
        return piece

    def _framed_empty(self) -> bool:
        """The server said the body is empty (``content-length: 0``, a 204, a chunked body of no chunks): an answer
        it meant to give, not a connection that broke (that was read as connection_dropped and asked again, for
        the same nothing). A body delimited by the close alone could be either: left to the provider."""
        return (self.status_code == 204 or self._response.content_length == 0
                or "chunked" in self.headers.get("transfer-encoding", "").lower())

    async def _events(self, what: str) -> AsyncGenerator[tuple[str, str], None]:
        async for events in self._opened(self._event_batches(what)):
            for event in events:
                yield event

    async def _event_batches(self, what: str, source: AsyncGenerator[list[str], None] | None = None
                             ) -> AsyncGenerator[list[tuple[str, str]], None]:
        batches = source or self._opened(self._line_batches())
        fresh = True  # nothing delivered yet: a bad first line may open a JSON document
        typed = False  # an event: field came since the last blank line
        bare = False  # a JSON document without "data:" opened mid-stream and not closed on its line: see below
        async for lines in batches:
            events = []
            for line in lines:
                if not line:
                    if typed:  # the blank line ends the event, and its type with it: see DISPATCHED
                        events.append(DISPATCHED)
                        typed = False
                    bare = False
                    continue
                if line[:6] == "data: ":  # the usual line, as the partition below would read it (issue #15)
                    events.append(("data", line[6:]))
                    continue
                if bare:  # the next line of a bare document: the reader joins its data lines, as an event's
                    events.append(("data", line))
                    continue
                if line[0] == ":":
                    continue
                field, colon, value = line.partition(":")
                if colon and field in _SSE_FIELDS:
                    events.append((field, value[1:] if value[:1] == " " else value))
                    if field == "event":
                        typed = True
                    continue
                if (events or not fresh) and (line[:1] in _OPENS or line.strip() == "[DONE]"):
                    # an event that lost its "data: " mid-stream (a gateway plugin that rewrote the read holding the
                    # usage chunk dropped the prefix of the others, the finish chunk and [DONE]: gpustack#6155)
                    events.append(("data", line))
                    # an error object written bare mid-stream, pretty-printed over lines of its own (Gemini's
                    # stream, its 503 "UNAVAILABLE" after the first chunks: OmniRoute#4177, passed on by a relay
                    # that copies the upstream's bytes): its lines after "{" were read as unknown fields, the
                    # answer malformed_response where the server said overloaded. They are its data, to the blank
                    # line; so are those of Gemini's array form of it ('[{', '  "error": {' …, '}', ']': bifrost#5262)
                    bare = line.strip() != "[DONE]" and try_loads(line) is NOT_JSON
                    continue
                if (events or not fresh) and line.lstrip()[:1] in _JSON_GOES_ON:
                    # the rest of a JSON document whose "{" came at the end of the line before (an error object
                    # written bare after a chunk — glued to it, or to a chunk cut short — and pretty-printed: its
                    # lines '  "error": {', '    "code": 503,' …, '}' read as fields no stream has, so the server's
                    # 503 was malformed_response). Its lines are data to the blank line: the provider joins them to
                    # the line before, as an event's data lines are joined (OmniRoute#4177, bifrost#5262)
                    events.append(("data", line))
                    bare = True
                    continue
                if events:  # what came before the bad line is delivered first, as one event at a time was
                    yield events
                if colon and field == "error":  # llama-server before llama.cpp#16109 (Sept 2025): its error
                    raise error_field(value)  # object as a field of its own, "error: {...}"
                if (events or not fresh) and UPSTREAM_BROKE.search(line):
                    # a relay whose upstream connection broke mid-answer says so in plain text and closes cleanly
                    # ("upstream error: read ECONNRESET", tetsuo-ai/agenc-core#2492): a connection dropped, asked
                    # again — it was malformed_response, never asked again, as if the same bytes would come back
                    raise ProviderError(Reason.CONNECTION_DROPPED, f"the relay's upstream broke mid-answer: "
                                        f"{said(line.strip())}")
                if fresh and not events and line.lstrip()[:1] in ("{", "["):
                    # a JSON document under an event-stream label, a text/plain one or none (a server that ignores
                    # stream: true, a relay): read as what it is, as under its own label. It was malformed_response.
                    whole = await self._json_body(lines[lines.index(line):], batches)
                    if try_loads(whole[0][1].strip()) is not NOT_JSON:
                        yield whole
                        return
                if self.ended_in_line and (not fresh or _FIELD_CUT.match(line)):
                    # the body ended inside this line, after events: a line cut short ("dat", "eve"), not a body
                    # that is no event stream. SSE discards an event the body ends inside (WHATWG HTML, "Once the end
                    # of the file is reached, any pending data must be discarded"): the provider then judges the
                    # stream as ended there — a whole answer kept, one cut short a dropped connection. So is a body
                    # cut inside its first line when what came is the start of a field ("d", "eve", "data"): it was
                    # malformed_response, "not an event stream", for a stream cut after its first bytes
                    continue
                raise not_an_event_stream(line, self.headers.get("content-type", ""), what)
            if events:
                fresh = False
                yield events


async def found_after_end(last: list[tuple[str, str]], batches: AsyncGenerator[list[tuple[str, str]], None],
                          find: Callable[[str], T | None]) -> T | None:
    """What ``find`` makes of the first event data that comes after an answer's end marker: in ``last`` (the events
    of the read that brought the marker, after it), then in what comes before the body ends, :data:`AFTER_END` at
    most. Usage some servers and relays send after ``[DONE]`` or ``message_stop`` (readers that stop at the marker
    lost it: the tokens were estimated). A body that ends after its marker costs nothing; one held open, the bound.
    Nothing after a whole answer can fail it: an error reading on is no answer lost."""
    for field, payload in last:
        if field == "data" and (found := find(payload)) is not None:
            return found
    try:
        async with asyncio.timeout(AFTER_END):
            async for events in batches:
                for field, payload in events:
                    if field == "data" and (found := find(payload)) is not None:
                        return found
    except Exception:  # the answer came whole with its end marker: nothing after it can fail it
        return None
    return None


def _rest(decoder: codecs.IncrementalDecoder | None) -> str:
    """What a body's decoder holds at its end (a sequence cut short, as U+FFFD): nothing if none was needed."""
    return decoder.decode(b"", final=True) if decoder is not None else ""


_SSE_FIELDS = frozenset({"data", "event", "id", "retry"})
#: a line that is the start of an SSE field line, cut before its colon (a body that ended after a byte or a few)
_FIELD_CUT = re.compile(r"(?:d(?:a(?:ta?)?)?|e(?:v(?:e(?:nt?)?)?)?|id?|r(?:e(?:t(?:ry?)?)?)?)\Z")


def cut_json(text: str) -> bool:
    """Whether ``text`` is the start of a JSON document that ended before the document did (``{``, ``{"a": "he``,
    ``[1, 2``): its parser ran out of text, rather than meeting what JSON is not."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False
    try:
        json.loads(stripped)
    except json.JSONDecodeError as exc:
        return exc.msg.startswith("Unterminated string") or exc.pos >= len(stripped)
    except (ValueError, RecursionError):
        return False
    return False
#: how an event that lost its "data: " mid-stream opens: a JSON object, or Gemini's array of them
_OPENS = ("{", "[")
#: how the lines of a JSON document written bare go on after its first: a key, an element, a closing bracket
_JSON_GOES_ON = frozenset('"{[}]')
#: a relay's plain-text words for its upstream connection breaking, as Node's and Go's errors name it
UPSTREAM_BROKE = re.compile(r"\b(?:ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|connection reset by peer|broken pipe|"
                            r"unexpected EOF)\b", re.IGNORECASE)

#: what :meth:`StreamResponse.sse_batches` gives for the blank line that ends an event which named its type: the SSE
#: spec (WHATWG, "dispatch the event") resets the event type there, whether the event had data or not. Readers that
#: kept the type until the next ``event:`` line read a data-less ``event: error`` (NestJS writes one when the error
#: has no message: ``event: error\nid: 1\n\n``, bayes-platform#639) as the type of every event after it: the next
#: chunk of a good answer was raised as the server's error. Only after typed events, so a stream of plain ``data:``
#: events (the OpenAI-compatible servers') costs nothing more
DISPATCHED = ("", "")


async def _prepended(first: list[str], batches: AsyncGenerator[list[str], None]) -> AsyncGenerator[list[str], None]:
    """``first``, then what ``batches`` gives."""
    yield first
    async for lines in batches:
        yield lines


def not_an_event_stream(line: str, content_type: str, what: str) -> ProviderError:
    """The error for a 200 whose body is not the event stream we asked for: the server's own error
    when the body is a JSON error object, else malformed_response."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and data.get("error"):
            err = data["error"]
            if isinstance(err, dict):
                return stream_error(str(err.get("type") or ""), error_words(err), err.get("code"))
            return stream_error("", str(err))
    shown = content_type or "no content-type"
    return ProviderError(Reason.MALFORMED_RESPONSE,
                         f"HTTP 200 with a body that is not {what} ({shown}): {_snippet(stripped)}")


def error_field(value: str) -> ProviderError:
    """The server's error from an SSE ``error:`` field (or an ``event: error`` event's data): an error
    object ``{"code", "message", "type"}``, wrapped in ``{"error": ...}`` or not, or plain text."""
    data = try_loads(value.strip())
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return stream_error(str(err.get("type") or ""), error_words(err), err.get("code"))
    return stream_error("", value.strip() if err is NOT_JSON else str(err))


#: an event's data that is the server's error in words, not JSON: Crane's server wrote ``data: error: <message>``
#: where every other event was JSON (lucasjinreal/Crane#121: "wrote EngineResponse::Error as a bare \"error:
#: <message>\" data line"; OpenCode failed on it with 'Unexpected identifier "error"'); modelyard read it as a
#: malformed stream — never asked again, the model counted broken — where the server said it failed
SAID_ERROR = re.compile(r"\s*error\s*:", re.IGNORECASE)


def said_error(value: str) -> ProviderError | None:
    """The server's error an event's data says in words (:data:`SAID_ERROR`), or None: data that is no JSON and
    opens with ``error:``."""
    opened = SAID_ERROR.match(value)
    return error_field(value[opened.end():]) if opened else None


def stream_error(kind: str, message: str, code: Any = None) -> ProviderError:
    """An error the server reported inside a 200 answer (an SSE error event, Ollama's error line,
    OpenRouter's error chunk): overloaded and rate limits keep their meaning, anything else is a
    stream error (retried, then the next model)."""
    kind = kind if isinstance(kind, str) else str(kind)
    named = kind
    if isinstance(code, str):
        if code.strip().isdigit():  # LiteLLM's proxy writes its codes as text: "code": "429"
            code = int(code)
        else:  # OpenAI's and Azure's word is in the code: {"type": "requests", "code": "rate_limit_exceeded"}
            named = f"{kind} {code}"
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    if status is None or not 400 <= status < 600:
        relayed = _RELAYED_STATUS.search(message)  # a relay's own code (Second-Me's 1), the upstream's in its words
        status = int(relayed.group(1)) if relayed else status
    if kind == NO_MEMORY:
        return no_memory(f"error mid-stream: {said(message)}", status)
    if kind and (decided := _TYPE_DECIDES.get(kind)) is not None:  # the provider read the words (see above)
        reason = decided
    elif CONTEXT_WORDS.search(message) or CONTEXT_WORDS.search(named):  # the prompt does not fit: as a 400 would say
        return ProviderError(Reason.BAD_REQUEST, f"error mid-stream: {said(f'{kind} {message}'.strip())} (the prompt "
                             "does not fit the model's context: another model may take it)")
    elif any(word in named for word in _BILLING_TYPES):  # as for a 402: lasts until someone pays
        reason = Reason.AUTH_ERROR
    elif "overload" in named or status in (503, 529):
        reason = Reason.OVERLOADED
    elif "rate_limit" in named or status == 429:
        reason = Reason.RATE_LIMITED
    elif status is not None and 400 <= status < 500:
        # the status the server would have answered had its headers not gone already: vLLM and SGLang refuse a
        # request in the stream, ``{"error": {"object": "error", "message": "The model is not multimodal. Please
        # remove image inputs.", "type": "BadRequestError", "code": 400}}`` then [DONE] (litellm#32237, #40578). As a
        # stream_error it was asked again, refused again, and counted against a model that is well
        reason = reason_for_status(status, kind)
    else:
        reason = Reason.STREAM_ERROR
    wait = LOADING_WAIT if reason is Reason.OVERLOADED and LOADING_SAID in message else None
    return ProviderError(reason, f"error mid-stream: {said(f'{kind} {message}'.strip())}", retry_after=wait,
                         absent=kind == NOT_PULLED)


#: an upstream's status as a relay words it inside its own error: openai-python's APIStatusError text, "Error code:
#: 503 - {…}" (``_make_status_error_from_response``), which Python relays built on it pass on whole — Second-Me's
#: ``{"error": {"code": 1, "message": "Request processing failed: Error code: 503 - {'error': {'code': 503, 'message':
#: 'Loading model', 'type': 'unavailable_error'}}"}}`` inside its 200 stream (mindverse/Second-Me#20), as LiteLLM's
#: "OpenAIException - Error code: 503 - …". Read by the relay's own code, it was a stream_error: asked again at once
#: of a model still loading, refused again, counted against it
_RELAYED_STATUS = re.compile(r"\bError code: ([45]\d\d)\b")
#: llama-server's words while its weights load (its 503 ``unavailable_error``): see :data:`LOADING_WAIT`
LOADING_SAID = "Loading model"


#: how servers say a prompt does not fit the model's context inside a 200 (after the headers, as an SSE error event or
#: an error object in the stream), where a status would have made it a bad_request: LM Studio 0.4's ``event: error``
#: "Input does not fit in context length. The input has 31430 tokens, but the context length only supports 30000
#: tokens." (goose#11318, lmstudio-bug-tracker#2322), its older "The number of tokens to keep from the initial prompt is
#: greater than the context length" (openclaude#353) and "Trying to keep the first N tokens when context the overflows"
#: (dyad#925); SGLang's "The input (N tokens) is longer than the model's context length (M tokens)." — its streaming
#: handler catches the tokenizer's ValueError after the 200 and sends ``data: {"error": {…, "code": 400}}`` then
#: ``[DONE]`` (serving_chat.py, generate_stream_resp) —, "Requested token count exceeds the model's maximum context
#: length" (SGLang, vLLM), vLLM's "This model's maximum context length is N tokens", llama.cpp's "the request exceeds
#: the available context size" (``exceed_context_size_error``; llama-box in a stream: gpustack#852) and OpenAI's
#: ``context_length_exceeded``. Each was a stream_error: asked again (refused again, the same prompt) and counted
#: against a model that is well, until it cooled for every request. Likewise llama.cpp's "Context size has been
#: exceeded." mid-generation (server-context.cpp: llama_decode found no room in the KV cache for one more token; LM
#: Studio's llama.cpp engine says it too: "Engine protocol predict stream returned an error: {code:500, message:'Context
#: size has been exceeded'}"): the prompt and its answer outgrew the slot's context, which asking again at once only
#: repeats. Where a unified KV pool ran out under other requests instead, the next model answers just as well and this
#: one is not counted as sick for the moment it was full. And vLLM's engine-side check, "The decoder prompt (length
#: 21535) is longer than the maximum model length of 16384", which Xinference streams as ``data: {"error": "<the
#: words>"}`` after the 200 (xinference/api/restful_api.py, stream_results; xorbitsai/inference#3785)
CONTEXT_WORDS = re.compile(r"maximum context length|longer than the (?:model's context|maximum model) length"
                           r"|does not fit in context length|tokens to keep from the initial prompt is greater than "
                           r"the context length|when context the overflows|exceeds? the available context size"
                           r"|exceed_context_size_error|context_length_exceeded|context size has been exceeded",
                           re.IGNORECASE)

#: characters of a server's own error message kept: it goes into every attempt's row, the error a client gets (the
#: attempts of an exhausted chain) and the logs, once per retry; a megabyte there was kept whole
MAX_SAID = 1000


def said(text: str) -> str:
    """A server's own words as an error detail: at most :data:`MAX_SAID` characters (LiteLLM's errors quote the
    whole request), and text SQLite can store — a lone UTF-16 half from a JavaScript server's JSON made the routing
    log refuse the row once (counted as a log failure, written only after repair)."""
    if len(text) > MAX_SAID:
        text = text[:MAX_SAID] + f"… ({len(text) - MAX_SAID} more characters)"
    return text if text.isascii() else repair_text(text)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def unreachable(base_url: str, exc: BaseException) -> str:
    """'cannot reach URL: ClientConnectorError' said neither why nor what to do; the OS's reason does."""
    why = type(exc).__name__
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, socket.gaierror) or isinstance(exc, aiohttp.ClientConnectorDNSError):
        # `ask` said 'cannot reach https://api.anthropic.com: Name or service not known' where `models` said the name
        # does not resolve here (ops/reach.py): the host is aiohttp's, a proxy's where the request went through one
        host = getattr(exc, "host", None) or urlsplit(base_url).hostname or base_url
        why = not_resolved(str(host), os_error if isinstance(os_error, OSError) else OSError(str(exc)))
    elif isinstance(os_error, OSError) and os_error.strerror:
        why = ("connection refused (is the server running? is the endpoint right?)"
               if isinstance(os_error, ConnectionRefusedError) else os_error.strerror)
    elif isinstance(exc, OSError) and exc.strerror:  # connected, then it broke: 'cannot reach …: ClientOSError'
        return f"the connection to {base_url} broke: {exc.strerror}"  # read beside a server that is up
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{base_url} closed the connection without answering"
    elif isinstance(exc, TimeoutError):  # said 'cannot reach URL: TimeoutError' of a server that took the connection
        return (f"{base_url} did not answer in time (a server busy or hung there, or another program on that port: "
                "is the endpoint right?)")
    return f"cannot reach {base_url}: {why}"


def _snippet(text: str) -> str:
    """A short, readable piece of an unexpected body: an HTML page's title, else its first words."""
    if text.startswith("<"):
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAGS.sub(" ", text)
    return " ".join(text.split())[:120] or "(empty)"


#: the most a control-plane answer (a model listing, /api/show) may hold: Ollama's /api/show of a large model, with
#: its tensor list, is a few megabytes
CONTROL_LIMIT = 32 * 2**20

#: seconds a pooled connection may sit idle before it is dropped: below the 5 s after which uvicorn
#: (vLLM and other Python servers), llama.cpp's server and Node.js close idle connections. With a
#: longer idle time a request sent just as the server closes its connection failed as connect_error
#: (seen in benchmarks/bench_gateway_hotpath.py: a 503, or a fallback and a cooldown count against a
#: healthy model); reconnecting after 4 s of silence costs well under a millisecond on a LAN.
POOL_IDLE = 4.0


@functools.cache
def _lenient_handler() -> type:
    """:class:`_Lenient` on aiohttp's protocol, made when a lenient pool is first made (aiohttp is imported on first
    use)."""
    from aiohttp.client_proto import ResponseHandler

    return type("_LenientHandler", (_Lenient, ResponseHandler), {})


if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler as _Protocol
else:
    _Protocol = object


class _Lenient(_Protocol):
    """aiohttp's protocol for a server that writes bytes after a body of known length (a footer a proxy appends, a
    stray newline counted out of ``content-length``): the bytes past ``content-length`` are dropped. aiohttp parses
    them as the next response's status line, in the same read as the body's end, and throws away the whole answer
    ('Bad status line'): a complete answer failed as malformed. One response per connection (``force_close``).
    Likewise a ``content-length`` beside ``transfer-encoding: chunked`` (a FastAPI proxy's, powerproxy-aoai#53): RFC
    9112 §6.3 says the chunked framing wins, as h11 (the official SDKs' parser) reads it; aiohttp refuses the pair
    ("Content-Length can't be present with Transfer-Encoding"). The length is dropped from the head, held until whole
    for that."""

    _head = b""
    #: bytes of the current read on that still belong to the body; None until the head is read, -1 when not known
    _left: int | None = None
    _over = False

    def data_received(self, data: bytes) -> None:
        if self._over:
            return  # the answer is whole: what the server writes after it is no part of it
        if self._left is None:
            self._head += data
            end, sep = self._head.find(b"\r\n\r\n"), 4
            if end < 0:
                end, sep = self._head.find(b"\n\n"), 2
            if end < 0:
                return  # held until whole (its content-length may have to go)
            head, data, self._head = self._head[:end], self._head[end:], b""  # data: from the blank line on
            head = _one_length(head)
            length = _CONTENT_LENGTH.search(head)
            chunked = _CHUNKED.search(head) is not None
            if length is not None and chunked:
                head = head[:length.start()] + b"X-Dropped-" + head[length.start():]
            super().data_received(head)
            self._left = -1 if length is None or chunked or head[9:10] == b"1" else sep + int(length.group(1))
        if self._left >= 0:
            if len(data) >= self._left:
                data, self._over = data[:self._left], True
            self._left -= len(data)
        if data:
            super().data_received(data)


_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$")
_CHUNKED = re.compile(rb"(?im)^transfer-encoding:[^\n]*\bchunked\b")
_ANY_LENGTH = re.compile(rb"(?im)^content-length:([^\r\n]*)\r?\n?")


def _one_length(head: bytes) -> bytes:
    """``head`` with a ``content-length`` given more than once, or as a list, all of one value (``Content-Length: 84``
    twice: nodejs/node#6517, libhtp#73, libmicrohttpd#15 — a server that adds its own beside the application's; ``84,
    84`` where a proxy joined them) as that one field. RFC 9110 §8.6 lets a recipient do so; h11 (the official SDKs'
    parser), browsers and libhtp do; aiohttp refuses the answer ("Duplicate Content-Length"). Lengths that differ are
    left as they came: the body's end is not known, and the answer stays refused."""
    fields = list(_ANY_LENGTH.finditer(head))
    if len(fields) < 2 and not (fields and b"," in fields[0].group(1)):
        return head
    values = {value.strip() for field in fields for value in field.group(1).split(b",")}
    if len(values) != 1 or not (value := values.pop()).isdigit():
        return head
    kept = _ANY_LENGTH.sub(b"", head)
    return kept + (b"" if kept.endswith(b"\n") else b"\r\n") + b"content-length: " + value


#: the response heads read: as large as the official SDKs' parser takes (h11, through httpx: a head of up to 16 KiB,
#: any number of fields). aiohttp's defaults refuse a field past 8,190 bytes ("Got more than 8190 bytes when reading
#: Header value is too long": a BentoML runner's ``Payload-Meta``, BentoML#4346; aiohttp#2304, #3862) and more than 128
#: fields: such an answer was malformed_response on every request, the model behind that server or proxy never used
HEAD_FIELD, HEAD_FIELDS = 16384, 512


def split_endpoint(url: str) -> tuple[str, str]:
    """(the endpoint without its query or trailing slash, ``"?query"`` or ``""``): an endpoint may carry a query every
    call must keep — Azure OpenAI's ``…/openai/deployments/NAME?api-version=2024-10-21`` (learn.microsoft.com,
    azure/ai-services/openai/reference), Gemini's OpenAI-compatible ``…/v1beta/openai?key=…``. A fragment goes."""
    base, mark, query = url.partition("#")[0].partition("?")
    return base.rstrip("/"), mark + query if query else ""


def joined(url: str, path: str) -> str:
    """``path`` below ``url``, before its query: ``https://h/openai/deployments/d?api-version=1`` and
    ``/chat/completions`` are ``https://h/openai/deployments/d/chat/completions?api-version=1``. The path was added
    after the query (``…?api-version=1/chat/completions``): such an endpoint could not serve a single request."""
    if "?" not in url and "#" not in url:
        return url + path
    base, query = split_endpoint(url)
    path, mark, more = path.partition("?")
    return base + path + (query + "&" + more if query and mark else query or mark + more)


def shown_url(url: str) -> str:
    """``url`` as it may be logged: without a user and password in it (``https://user:key@proxy/``), and the value of
    a query parameter named like a credential (Gemini's ``?key=``, a SAS ``sig=``) hidden."""
    if "?" in url:
        url = redact_query(url)
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    host = parts.hostname or ""
    return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()


def _bytes_after_body(exc: aiohttp.ClientResponseError) -> bool:
    """aiohttp's error for bytes it read as a status line where one must begin: after a complete body, or from a
    server that does not speak HTTP/1 at all (then the lenient retry fails the same way); or for a head that frames
    its body twice (see :class:`_Lenient`) — in either order of its two fields: llhttp (the lean client's parser, and
    aiohttp's C one) names the one that came second, so ``content-length`` before ``transfer-encoding`` reads
    "Transfer-Encoding can't be present with Content-Length", which was not heard here: every answer of such a server
    was malformed_response, and the lenient reading never learned."""
    said = str(exc.__cause__ or exc.message)
    return ("Bad status line" in said or "Content-Length can't be present with Transfer-Encoding" in said
            or "Transfer-Encoding can't be present with Content-Length" in said
            or "Duplicate Content-Length" in said or "Invalid character in Content-Length" in said)


#: forks of this process so far (counted in the child): a session made before one is checked against asyncio
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: proxy schemes aiohttp can go through (a SOCKS proxy needs another library)
_PROXY_SCHEMES = frozenset({"http", "https"})


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, read as curl and the official SDKs (httpx's ``trust_env``) read
    it: ``HTTPS_PROXY`` / ``HTTP_PROXY`` by the endpoint's scheme, else ``ALL_PROXY``, in either case; ``NO_PROXY``
    honoured. Never for a loopback endpoint (a local Ollama or llama-server sent through the company proxy is the
    usual way such a setting breaks local models: ollama#1337's reports). None: connect directly. Read once per
    client, not per request (aiohttp's own ``trust_env`` reads the environment on every request, issue #15). A SOCKS
    proxy is not supported: said once, and the endpoint is connected to directly, as before."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or _loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    scheme = urlsplit(proxy if "://" in proxy else "http://" + proxy).scheme
    if scheme not in _PROXY_SCHEMES:
        if scheme not in _PROXY_SAID:
            _PROXY_SAID.add(scheme)
            log.warning("a %s:// proxy is named in the environment; modelyard goes through http:// and https:// "
                        "proxies only, so models are called directly", scheme)
        return None
    return proxy if "://" in proxy else "http://" + proxy


_PROXY_SAID: set[str] = set()


def _lean_endpoint(base: str) -> tuple[str, int, str] | None:
    """(host, port, origin) when ``base`` may go through the lean client: plain ``http://``, no user in it, and the
    environment does not ask for aiohttp (``MODELYARD_HTTP_CLIENT=aiohttp``, for comparison or as an escape hatch)."""
    if os.environ.get("MODELYARD_HTTP_CLIENT", "").strip().lower() == "aiohttp":
        return None
    parts = urlsplit(base)
    try:
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return parts.hostname, port, f"http://{parts.netloc}"


@functools.cache
def _user_agent() -> str:
    """The ``User-Agent`` aiohttp sends: the lean client sends the same, as servers saw before."""
    return str(aiohttp.http.SERVER_SOFTWARE)


#: sessions being closed in the background (:meth:`HttpClient._learn_lenient`), held until they are
_closing: set[asyncio.Task[None]] = set()


#: the content codings modelyard asks for (a proxy may send others: coding.py reads br and zstd too)
ACCEPTED_CODINGS = "gzip, deflate"


class HttpClient:
    """One keep-alive connection pool per provider, created lazily inside the running loop."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        base, query = split_endpoint(base_url)
        self.base_url = base + query
        #: the proxy the environment names for this endpoint (:func:`env_proxy`), or None
        self.proxy = env_proxy(base)
        #: the endpoint up to its query, and the query each call keeps (:func:`joined`): a path goes between them
        self._base, self._query = base, query
        self.headers = headers or {}
        self._session: aiohttp.ClientSession | None = None
        #: the process's forks (:data:`_forks`) when the session was made: one made before a fork is not trusted
        self._forks = _forks[0]
        #: per bounds object (by id, checked by identity): it, its connect bound as aiohttp's, its idle bound —
        #: read from the pydantic object once, not per request (issue #15)
        self._timeouts: dict[int, tuple[Timeouts, aiohttp.ClientTimeout, float]] = {}
        #: learned: this server writes bytes after its answers (:class:`_Lenient` reads them from now on)
        self.lenient = False
        #: learned: this server once left its end marker out after a whole answer and kept the connection open (a
        #: proxy whose upstream omits [DONE] and that sends keep-alive comments, bifrost#6784), and the answer was
        #: waited for to the end of the grace (or lost to the idle bound): a short grace only, from then on
        self.no_end_marker = False
        #: learned (openai.py): this server sends an answer's text without a finish reason and the reason on its last
        #: chunk, or after it: a later answer whose one chunk carries text and its finish reason has ended (a short
        #: grace, not 80% of the idle bound on every such answer). None until an answer says; False for good once a
        #: finish reason came on a chunk the answer went on after (LiteLLM relaying Gemini puts one on every chunk)
        self.finish_last: bool | None = None
        #: set by a provider: given a refusal (an error status) and the body sent, the body to send once more at
        #: once instead (a field the server refuses dropped), or None. Asked on an error status only
        self.refit: Refit | None = None
        #: (host, port, origin) of a plain http:// endpoint reached directly: its requests go through the lean client
        #: (lean_http.py, issue #15) unless ``MODELYARD_HTTP_CLIENT=aiohttp``; None: aiohttp's for every request
        self._lean_at = _lean_endpoint(base) if self.proxy is None else None
        self._pool: Pool | None = None
        self._pool_forks = _forks[0]
        #: the request head's fields after its first line, per set of the request's own headers (:meth:`_head`)
        self._heads: dict[tuple[tuple[str, str], ...], bytes] = {}

    def session(self) -> aiohttp.ClientSession:
        """The pool, made anew for another loop (each ``asyncio.run`` of a CLI command or a test has its own).

        Its loop is known to be the running one without asking asyncio, whose ``get_running_loop()`` makes a
        ``getpid`` system call each time (once per request in ``serve``, issue #15): an asyncio loop notes the
        thread it runs in (``_thread_id``, None once stopped) and one thread runs one loop at a time. A forked
        child (whose copy of a running loop still names the thread) asks asyncio, as before."""
        session = self._session
        if (session is not None and getattr(session._loop, "_thread_id", None) == threading.get_ident()
                and self._forks == _forks[0] and not session.closed):
            return session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or session._loop is not loop:
            self._forks = _forks[0]
            # The router's slots, not the pool, cap concurrency per model: keep the pool generous.
            if self.lenient:
                connector = aiohttp.TCPConnector(limit=256, force_close=True)
                connector._factory = functools.partial(_lenient_handler(), loop=loop)
            else:
                connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=POOL_IDLE)
            headers = self.headers
            if not any(name.lower() == "accept-encoding" for name in headers):
                # what is offered stays what was tested, whatever is installed: aiohttp offers br and zstd wherever
                # their modules are (coding.py decodes both when a relay sends them anyway)
                headers = {"Accept-Encoding": ACCEPTED_CODINGS, **headers}
            session = self._session = aiohttp.ClientSession(
                headers=headers, connector=connector, auto_decompress=False, max_line_size=HEAD_FIELD,
                max_field_size=HEAD_FIELD, max_headers=HEAD_FIELDS, proxy=self.proxy)
        return session

    def post(self, url: str, data: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout
             ) -> Awaitable[Response]:
        """POST ``data`` to ``url``, never redirected (see :meth:`_post_again`): through the lean client (lean_http.py)
        for a plain http:// endpoint reached directly, else aiohttp's session; aiohttp's exceptions either way."""
        lean = self._lean_at
        if lean is not None and not self.lenient and url.startswith(lean[2]):
            return self._lean().send(self._request(url[len(lean[2]):], data, headers), timeout.sock_connect)
        return self.session().post(url, data=data, headers=headers, timeout=timeout, allow_redirects=False)

    def _lean(self) -> Pool:
        """The lean client's pool of the running loop: as :meth:`session` finds its own."""
        pool = self._pool
        if (pool is not None and getattr(pool.loop, "_thread_id", None) == threading.get_ident()
                and self._pool_forks == _forks[0]):
            return pool
        loop = asyncio.get_running_loop()
        if pool is None or pool.loop is not loop or self._pool_forks != _forks[0]:
            from modelyard.providers.lean_http import Pool

            self._pool_forks = _forks[0]
            host, port, origin = self._lean_at  # type: ignore[misc]
            pool = self._pool = Pool(loop, host, port, origin, limit=256, idle=POOL_IDLE, max_line=HEAD_FIELD,
                                     max_field=HEAD_FIELD, max_headers=HEAD_FIELDS, trailing=self._learn_lenient)
        return pool

    def _request(self, target: str, data: bytes, headers: dict[str, str]) -> bytes:
        """A POST's bytes as aiohttp writes them: the session's headers (its ``Accept-Encoding``, then the client's),
        the request's own over them, aiohttp's ``Accept`` and ``User-Agent`` where neither says."""
        key = tuple(headers.items())
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 64:
                self._heads.clear()
            fields: dict[str, tuple[str, str]] = {}
            for name, value in (("Host", self._lean_at[2][7:]), ("Accept", "*/*"),  # type: ignore[index]
                                ("Accept-Encoding", ACCEPTED_CODINGS), ("User-Agent", _user_agent()),
                                *self.headers.items(), *key):  # later ones win
                if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                    raise ValueError("Newline or carriage return character detected in HTTP status message or "
                                     "header. This is a potential security issue.")
                fields[name.lower()] = (name, value)
            head = self._heads[key] = "".join(f"{n}: {v}\r\n" for n, v in fields.values()).encode()
        if not target.isascii() or " " in target:
            target = quote(target, safe="/?&=%:@!$'()*+,;~-._")
        return b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (target.encode(), head, len(data), data)

    def _learn_lenient(self) -> None:
        """The lean client read bytes after a whole answer (its connection is not used again): this server is read as
        :meth:`_post_again` learns it, leniently, from now on."""
        if self.lenient:
            return
        self.lenient = True
        if self._session is not None:  # made before, not lenient: closed once its requests end
            _closing.add(task := asyncio.get_running_loop().create_task(self._session.close()))
            task.add_done_callback(_closing.discard)
            self._session = None
        log.info("%s writes bytes after its answers; they are dropped from now on", shown_url(self.base_url))

    async def _post_again(self, exc: aiohttp.ClientError, url: str, data: bytes, headers: dict[str, str],
                          timeout: aiohttp.ClientTimeout) -> Response:
        """The POST that failed with ``exc`` (:meth:`stream` makes the first one itself, a coroutine fewer per
        request, issue #15), asked once more where that helps; else ``exc`` is raised. A POST is never redirected (a
        307 to another host would carry the request's own headers, Anthropic's x-api-key, there; aiohttp only drops
        Authorization). A server found writing bytes after its answer is asked once more, read leniently, and read
        so from then on."""
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise exc  # it never connected: refused, unreachable
            # closed or reset without a byte of answer: a pooled connection the server had closed as it was taken
            # (llama_cpp.server closes the one its failed answer came on, after aiohttp gave it back to the pool;
            # uvicorn closes one idle for 5 s). That was a connect_error: a retry after backoff, and a failure
            # counted against a healthy model. Asked once more, at once, on another connection.
            return await self.post(url, data, headers, timeout)
        if not isinstance(exc, aiohttp.ClientResponseError) or self.lenient or not _bytes_after_body(exc):
            raise exc
        await self.aclose()
        self.lenient = True
        try:
            response = await self.post(url, data, headers, timeout)
        except BaseException:  # no help (a server that does not speak HTTP/1): kept-alive connections again
            await self.aclose()
            self.lenient = False
            raise
        log.info("%s writes bytes after its answers; they are dropped from now on", shown_url(self.base_url))
        return response

    async def _post_fresh(self, url: str, data: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout
                          ) -> Response:
        """The POST once more, at once, on a new connection, after a ``408 Request Timeout`` that closes the
        connection: a server that closes a kept-alive connection it let idle past its own keep-alive says so with a
        408 and a close (ntex, graphql-hive/router#1144; eclipse-rdf4j/rdf4j#3698), and answers a request sent on it
        just then with that 408 (RFC 9110 §15.5.9: the client may repeat it). The pool's other idle connections, idle
        as long, are closed too. It was a server_error: a retry after a backoff, or the next model and a failure
        counted against a healthy one. A 408 that keeps the connection (LiteLLM's proxy says its upstream's timeout
        so, BerriAI/litellm#3279) or a second 408 is the server's word: read as any error status."""
        if self._pool is not None:
            self._pool.drop_idle()
        if self._session is not None:
            _drop_idle(self._session.connector)
        return await self.post(url, data, headers, timeout)

    def stream(self, path: str, body: dict[str, Any], timeouts: Timeouts, extract: Extract,
               headers: dict[str, str] | None = None, *, limit: int = 8 * 2**20, refit: Refit | None = None
               ) -> _Stream:
        """POST JSON and hand over the streaming response (``async with client.stream(...) as response``), with
        transport failures translated. ``refit``: this call's own in place of the client's :attr:`refit` (one that
        remembers what it left out of this request).

        Read timeouts are left to the router (first-token and idle bounds); only connect is bounded here.
        """
        return _Stream(self, path, body, timeouts, extract, headers, limit, refit)

    def _learn_no_end_marker(self) -> None:
        self.no_end_marker = True
        log.info("%s left an answer's end marker out and kept the connection open; after a whole answer it is not "
                 "waited for long from now on", shown_url(self.base_url))

    async def request_json(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        """A small control-plane call (warm-up, model listing): (status, parsed JSON or None)."""
        try:
            async with self.session().request(method, joined(self.base_url, path), json=body,
                                              timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = bytearray()
                content = decoded(resp.content, resp.headers.get("content-encoding", ""))
                while piece := await content.readany():
                    raw += piece
                    if len(raw) > CONTROL_LIMIT:  # read whole, a server's endless body filled memory within the
                        raise ProviderError(  # time bound (gigabytes a second on loopback)
                            Reason.RESPONSE_TOO_LARGE,
                            f"{shown_url(joined(self.base_url, path))} answered more than {CONTROL_LIMIT // 2**20} MB")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(Reason.CONNECT_ERROR, unreachable(shown_url(self.base_url), exc)) from exc
        except ProviderError as exc:
            if exc.reason is not Reason.MALFORMED_RESPONSE:
                raise
            return resp.status, None  # a body that opens compressed and does not decode: no JSON in it
        try:
            return resp.status, json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            return resp.status, None

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone: nothing left to close cleanly
                await self._session.close()
        self._session = None


class _Stream:
    """:meth:`HttpClient.stream`'s context. A class, not ``contextlib.asynccontextmanager``: that made a wrapper and an
    async generator per request, stepped it in and out, and raised and caught a ``StopAsyncIteration`` at every
    exit — ~12k instructions a request on the gateway's hot path (issue #15). What it does is the generator's, in
    the same order: the POST in :meth:`__aenter__`, the generator's ``except`` clauses and ``finally`` in
    :meth:`_end`, run by :meth:`__aexit__` (or by ``__aenter__`` when it fails after the POST)."""

    __slots__ = ("_body", "_client", "_extract", "_headers", "_limit", "_path", "_reading", "_refit", "_response",
                 "_timeouts")

    def __init__(self, client: HttpClient, path: str, body: dict[str, Any], timeouts: Timeouts, extract: Extract,
                 headers: dict[str, str] | None, limit: int, refit: Refit | None = None):
        self._client, self._path, self._body, self._timeouts = client, path, body, timeouts
        self._extract, self._headers, self._limit, self._refit = extract, headers, limit, refit
        self._reading: StreamResponse | None = None

    async def __aenter__(self) -> StreamResponse:
        client, body, timeouts, headers = self._client, self._body, self._timeouts, self._headers
        read = client._timeouts.get(id(timeouts))
        if read is None or read[0] is not timeouts:  # one per bounds object (frozen, shared): not read per request
            if len(client._timeouts) >= 64:  # bounds objects made per call (not the router's): kept bounded
                client._timeouts.clear()
            read = client._timeouts[id(timeouts)] = (timeouts, aiohttp.ClientTimeout(
                total=None, sock_connect=timeouts.connect, connect=None, sock_read=None), timeouts.idle)
        _, timeout, idle = read
        url, data, sent = (client._base + self._path + client._query, dumps(body),
                           {**_JSON, **headers} if headers else _JSON)
        try:
            try:  # never redirected: see _post_again
                response = await client.post(url, data, sent, timeout)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientResponseError) as exc:
                response = await client._post_again(exc, url, data, sent, timeout)
        except (aiohttp.ConnectionTimeoutError, TimeoutError) as exc:
            raise ProviderError(Reason.CONNECT_TIMEOUT, f"connect to {shown_url(client.base_url)} timed out") from exc
        except aiohttp.ClientResponseError as exc:  # it answered, unreadably: a redirect loop, bytes that are not
            # HTTP
            raise ProviderError(Reason.MALFORMED_RESPONSE,
                                f"unreadable answer from {shown_url(client.base_url)}: {_snippet(exc.message)}"
                                ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(Reason.CONNECT_ERROR, unreachable(shown_url(client.base_url), exc)) from exc
        self._response = response
        try:
            # a server may refuse two things of a body, one at a time; a refit that leaves a field out is not counted
            # (the body only shrinks, so those end): OpenAI's reasoning models refuse top_p, then each penalty
            refits = 2
            stale = True  # a 408 may be the server closing a kept-alive connection it let idle (:meth:`_post_fresh`)
            while response.status >= 300:
                if response.status == 408 and stale and "close" in response.headers.get("connection", "").lower():
                    stale = False
                    response.close()
                    try:
                        response = self._response = await client._post_fresh(url, dumps(body), sent, timeout)
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        raise ProviderError(Reason.CONNECT_ERROR, unreachable(shown_url(client.base_url), exc)
                                            ) from exc
                    continue
                error = error_from_body(response.status, await _read_capped(response), response.headers,
                                        self._extract)
                refit = self._refit or client.refit
                again = refit(error, body) if refit is not None else None
                rewritten = again is not None and len(again) >= len(body)
                if again is None or (rewritten and not refits):
                    raise _where_asked(error, url)
                body, refits = again, refits - rewritten
                response.close()
                try:
                    response = self._response = await client.post(url, dumps(body), sent, timeout)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise ProviderError(Reason.CONNECT_ERROR, unreachable(shown_url(client.base_url), exc)) from exc
            # the rest of a whole answer is waited for half the idle bound (the router's would end it), or briefly
            # from a server that was found to leave its end marker out
            reading = self._reading = StreamResponse(response, self._limit,
                                                     min(END_GRACE, idle / 2) if client.no_end_marker else idle / 2,
                                                     idle * MAY_BE_WHOLE_SHARE)
        except BaseException as exc:
            await self._end(exc, False)  # raises a translated error, or returns and the error goes on as it was
            raise
        return reading

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> bool:
        complete = False
        if exc is None:
            complete = self._response.content.at_eof()
            reading = self._reading
            if reading is not None and reading.lingered and not self._client.no_end_marker:
                self._client._learn_no_end_marker()
        return await self._end(exc, complete)

    async def _end(self, exc: BaseException | None, complete: bool) -> bool:
        """How the request ends: True when ``exc`` is swallowed (only the end marker was lost), a translated error
        raised, or False. The body goes back to the pool only when it was read whole (``complete``)."""
        client, response, reading = self._client, self._response, self._reading
        try:
            if isinstance(exc, asyncio.CancelledError):
                if reading is not None and reading.answered and not client.no_end_marker:
                    # the wait after a whole answer was ended (by the router's idle bound): its end marker never came
                    client._learn_no_end_marker()
            elif isinstance(exc, aiohttp.ClientError):  # the stream broke after headers
                if reading is not None and reading.answered:
                    return True  # only the end marker was lost: the provider finishes the answer it has
                raise ProviderError(Reason.CONNECTION_DROPPED, _broke(exc)) from exc
            return False
        finally:
            try:
                if reading is not None:
                    await reading.aclose()
            finally:
                # An abandoned or broken body must not go back to the pool half-read.
                if complete:
                    response.release()
                else:
                    response.close()


def _drop_idle(connector: aiohttp.BaseConnector | None) -> None:
    """Close the idle kept-alive connections of aiohttp's ``connector`` (its ``_conns``: aiohttp keeps no public way
    to); the ones in use are left to their requests. Nothing where its internals differ."""
    idle = getattr(connector, "_conns", None)
    if not isinstance(idle, dict):
        return
    for held in list(idle.values()):
        for entry in list(held):
            protocol = entry[0] if isinstance(entry, tuple) else None
            if protocol is not None and hasattr(protocol, "close"):
                protocol.close()
    idle.clear()


def make_client(base_url: str, headers: dict[str, str] | None = None) -> HttpClient:
    return HttpClient(base_url, headers)


class HttpProvider(Provider):
    """A provider that talks HTTP to ``endpoint``: owns one lazily created :class:`HttpClient`."""

    default_endpoint = ""

    def __init__(self, name: str, config: ModelConfig):
        super().__init__(name, config)
        self.endpoint = "".join(split_endpoint(config.endpoint or self.default_endpoint))
        self._client: HttpClient | None = None

    def client_headers(self) -> dict[str, str]:
        """Headers sent with every request (auth, API version)."""
        return {}

    def address(self) -> tuple[str, int] | None:
        """The server's host and port — the proxy's, where the environment sends this endpoint through one."""
        url = urlsplit(env_proxy(self.endpoint) or self.endpoint)
        if not url.hostname:
            return None
        try:
            port = url.port
        except ValueError:  # a port that is not a number: the request itself will say so
            return None
        return url.hostname, port or (443 if url.scheme == "https" else 80)

    def answer_path(self) -> str | None:
        """A cheap GET every server of this backend answers (its model listing), asked by ``models`` of a server that
        took the connection; None: nothing to ask (a hosted API)."""
        return None

    async def silence(self, timeout: float) -> str:
        """A server that takes connections and never answers (hung, or a program that does not speak HTTP on that
        port) was "available" in ``models`` — a connect was all it asked — and every request then waited out its
        first-token timeout there. Any HTTP answer, a 404 or a 401 included, is an answer."""
        if (path := self.answer_path()) is None:
            return ""
        try:
            await self.client.request_json("GET", path, timeout=timeout)
        except ProviderError as exc:
            if exc.reason is not Reason.CONNECT_ERROR:  # an answer too large or unreadable is still an answer
                return ""
            if isinstance(exc.__cause__, TimeoutError):
                return (f"{shown_url(self.endpoint)} takes connections but did not answer GET {path} "
                        f"within {timeout:g}s: a server hung or busy there, or a program on that port that does "
                        "not speak HTTP — is the endpoint right?")
            return exc.message
        return ""

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = make_client(self.endpoint, self.client_headers())
            self._client.refit = self._without_refused
        return self._client

    def _without_refused(self, error: ProviderError, body: dict[str, Any]) -> dict[str, Any] | None:
        """``body`` refitted to what the server refused (sent once more at once), or None: the refusal stands. A
        provider that learns from a server's refusals (a field it will not take) says how; asked on errors only."""
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def openai_tools(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    """Tool definitions in the OpenAI shape that Ollama, OpenAI-compatible servers and llama.cpp share."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools]


#: the prefix LiteLLM's proxy gives the upstream's own headers (:func:`error_from_body`)
_RELAYED = "llm_provider-"


def _said_wait(headers: Any, prefix: str) -> float | None:
    """``retry-after-ms``, else ``retry-after``, under ``prefix``: the wait a server asked for, in seconds."""
    wait = retry_after_ms(headers.get(prefix + "retry-after-ms"))
    return parse_retry_after(headers.get(prefix + "retry-after")) if wait is None else wait


#: reasons a status gives that ``x-should-retry: true`` overrules (:func:`error_from_body`)
_SAID_AGAIN = frozenset({Reason.BAD_REQUEST, Reason.MODEL_MISSING, Reason.AUTH_ERROR})

#: error types/codes servers use for "no such model" (OpenAI, vLLM, Anthropic)
_MODEL_MISSING_TYPES = frozenset({"model_not_found", "NotFoundError", "not_found_error"})


#: the account behind the key cannot pay (Anthropic's 402 billing_error, OpenRouter's 402, OpenAI's 429
#: insufficient_quota): like a refused key it lasts until someone acts, so the model cools as for a 401 instead of
#: being asked (and failing) on every request, or cooling for a rate limit's seconds. LiteLLM's proxy says so of a
#: virtual key, user, team or model whose budget is spent: ``"type": "budget_exceeded"``, "Budget has been exceeded!
#: Current cost: 10.51, Max budget: 10.00", a 429 now, a 400 before (litellm#36729, #4606, #14144) — it was a rate
#: limit (asked again after seconds, refused until the budget's period turned) or a bad request (asked every time)
_BILLING_TYPES = frozenset({"billing_error", "insufficient_quota", "usage_limit_reached", "budget_exceeded"})

#: a plan's allowance spent for the hour, the session or the week, in the words of Ollama's cloud models (a 429 with no
#: retry-after): "you've reached your hourly usage limit, please wait or upgrade to continue" (continue#9233), "you (x)
#: have reached your session usage limit, upgrade for higher limits" (continue#11444, hermes-agent#65563), "… your
#: weekly usage limit" (HomericIntelligence/Scylla#346). Providers name it :data:`ALLOWANCE_SPENT`: it lasts until
#: someone acts or the window turns over, as an account that cannot pay does
USAGE_LIMIT_WORDS = re.compile(r"reached your (?:\w+ )?usage limit", re.IGNORECASE)
ALLOWANCE_SPENT = "usage_limit_reached"

#: an account with nothing left to pay with, said under a 429 — a rate limit: asked again after a backoff, cooled for
#: the breaker's seconds, then asked (and refused) on every request until someone paid: Z.ai's (GLM) code 1113
#: "Insufficient balance or no resource package. Please recharge." (on its mainland endpoint in Chinese,
#: "余额不足或无可用资源包,请充值。"), on its OpenAI-compatible API (``{"error": {"code": "1113", …}}``:
#: claude-code-router#1071, cursor2api#30, continue#10296) and its Anthropic-compatible one (a ``rate_limit_error``, the
#: words in brackets: zai-org/feedback#789); Moonshot's "Your account … is suspended due to insufficient balance"
#: (opencode#24462); OpenAI's "You exceeded your current quota, please check your plan and billing details" passed on
#: by a gateway that dropped its ``insufficient_quota`` type. Providers name it :data:`BALANCE_SPENT`, one of the
#: billing types: it cools as a 402 does
BALANCE_WORDS = re.compile(r"insufficient balance|余额不足|exceeded your current quota", re.IGNORECASE)
BALANCE_SPENT = "billing_error"


#: 4xx statuses that say nothing against the request: a proxy's "request timeout" (nginx's and AWS ALB's 408, sent for
#: an upstream that kept it waiting, or a kept-alive connection it gave up on), "client closed request" (nginx's
#: 499, ALB's 460: a proxy between the two hung up), 425 "too early" (a replay-safe retry asked for) and 409
#: "conflict" (OpenAI's lock timeout: the official SDKs' ``_should_retry`` asks again on 408, 409, 429 and 5xx alike).
#: As a bad_request it was neither retried nor counted against the model, and the exhausted chain told the client
#: not to retry (400)
_TRANSIENT_4XX = frozenset({408, 409, 425, 460, 499})


#: error types that decide the reason whatever the status (the providers' extract functions name the first three when
#: they recognise the server's words): a request refused as asked, which another model may answer and which says
#: nothing of this model's health — OpenRouter's 403 for an input its moderation flagged (was auth_error: the model
#: cooled as for a revoked key), llama-server's 500 "tools param requires --jinja flag" (was server_error: asked again,
#: refused again, counted until the model cooled for every request); a model its server cannot load at all (one
#: newer than the server): cools as a model not there; a host with no memory for it now (Ollama's 500 "model requires
#: more system memory", through its /v1 too): :data:`NO_MEMORY`, overloaded for :data:`NO_MEMORY_WAIT`. TGI names its
#: own failures in ``error_type``: "generation" and "incomplete_generation" come as 424 and 500 (a 424 was bad_request:
#: neither retried nor counted; a CUDA fault mid-generation, text-generation-inference#1510), "overloaded" as 429,
#: "validation" as 422 — or inside a 200 stream, where it was a stream_error asked again for the same refusal (a
#: prompt and max_new_tokens past the context: huggingface_hub's tests/test_inference_client.py replays one)
REFUSED, UNSUPPORTED, NO_ROOM = "flagged", "unsupported", "no_room"
#: the host has no memory for the model now (:data:`NO_MEMORY_WORDS`)
NO_MEMORY = "no_memory"
#: the prompt outgrew the context, said under a status that reads as the server's fault (llama-server's 500 "Context
#: size has been exceeded."): the request's, as a 400 says (see :data:`CONTEXT_WORDS`)
CONTEXT_FULL = "context_full"
#: the conversation sent holds what the server cannot take, said under a 500 (llama-server's "Failed to parse tool
#: call arguments as JSON" for a call in the history): the request's, as a 400 says
HISTORY_REFUSED = "history_refused"
#: a chat template that takes a system message only first: Qwen's (``raise_exception('System message must be at the
#: beginning.')``, the official default since Qwen3.5; MiniMax's likewise) rendered by llama-server (--jinja), vLLM or
#: LM Studio, and Ollama's qwen renderer ("chat prompt error" error="system message must be at the beginning",
#: routes.go: a 500). Clients send later ones (Claude Code's hook context, an agent's injected state: opencode#16560,
#: #20785). A 500 was a server_error: asked again for the same refusal, counted until the model cooled for every request
SYSTEM_FIRST_WORDS = re.compile(r"system message must be at the beginning", re.IGNORECASE)


def system_first(messages: Any) -> list[Any] | None:
    """``messages`` with each system message after the first message sent as a user message, in place (merged into
    the first, the prompt's start would change, and a server's prompt cache with it); None when there is none."""
    if not isinstance(messages, list) or not any(
            isinstance(m, dict) and m.get("role") == "system" for m in messages[1:]):
        return None
    return messages[:1] + [{**m, "role": "user"} if isinstance(m, dict) and m.get("role") == "system" else m
                           for m in messages[1:]]
#: Groq's 400 ``tool_use_failed``: the *model's* tool call did not parse ("Failed to call a function. Please adjust
#: your prompt. See 'failed_generation' for more details."), or a required call never came. It was a bad_request — a
#: chain ending on it told the client its request was wrong (400, do not retry); the answer was unusable, as a tool
#: call written as text is: the next model is asked
TOOL_USE_FAILED = "tool_use_failed"
#: the path takes no such request (LM Studio answers a path it does not serve with a *200* and
#: ``{"error": "Unexpected endpoint or method. (POST /api/v0/v1/chat/completions)"}``, lmstudio-bug-tracker#618): a
#: wrong endpoint in the config, as a 404 or 405 says — it was a stream_error, asked again on every request
WRONG_ENDPOINT = "wrong_endpoint"
#: the model cannot chat at all: an embedding model named in a chain (Ollama's 400 '"embeddinggemma" does not support
#: chat' — routes.go's capability check; "embedding models do not support chat" before 0.2: ollama#2778). As a
#: bad_request it was asked, and refused, on every request; it is the config's mistake, as a model not there is.
#: Likewise a llama-server started with ``--embeddings``: 501 ``not_supported_error`` "This server does not support
#: completions. Start it without `--embeddings`" (server.cpp, handle_completions_impl) — a server_error, asked again at
#: once and counted until the breaker opened for seconds, then again, for as long as the server ran so
NOT_CHAT = "not_a_chat_model"
#: the server has the model on disk but not in memory and will not load it for a request: LM Studio with just-in-time
#: loading off (or failing) answers "No models loaded. Please load a model in the developer page or use the 'lms load'
#: command." — a 404 in 0.3 (lmstudio-ai/lms#107), a 400 ``invalid_request_error`` with ``param: "model"`` in 0.4
#: (lmstudio-bug-tracker#1730, #1217). The 400 was a bad_request: the model never cooled and every request was asked
#: of it first, refused, until someone loaded it. It holds until someone does, as a model not there
NOT_LOADED = "model_not_loaded"
#: the request alone is past the model's tokens-per-minute allowance (OpenAI's 429, Groq's 413 "Request too large for
#: … on tokens per min (TPM)": :data:`modelyard.providers.output_cap.ALLOWANCE_WORDS`). The 429 was a rate limit: asked
#: again after a backoff for the same refusal, and the model cooled for every other request, which it would have taken.
#: The request's, as a prompt past the context is: the router asks once more within the allowance when a smaller
#: ``max_tokens`` makes it fit, else the next model, this one not counted as sick
PAST_ALLOWANCE = "past_allowance"
NOT_CHAT_WORDS = re.compile(r"does not support (?:chat|generate|completions)\b|embedding models do not support chat")
#: Ollama's pending queue (OLLAMA_MAX_QUEUE, 512 by default) is full: server/sched.go's ErrMaxQueue, "server busy,
#: please try again.  maximum pending requests exceeded", answered as a 503 by routes.go on /api/chat, /api/generate and
#: /api/embed, and through its OpenAI-compatible /v1 (chat, completions, embeddings) in OpenAI's error object —
#: middleware/openai.go's writeError wraps the same words (openai.NewError: type "api_error"). The server is busy, the
#: model not sick (the scale facts' "treat as queue full, move on"): as ``overloaded`` it was asked again after a
#: backoff into the same full queue and counted towards the breaker, so a burst cooled a healthy model. It is
#: :data:`~modelyard.errors.Reason.QUEUE_FULL`, as for modelyard's own ``max_queue``: the next model at once, nothing
#: cools. Every provider reads it through :func:`queue_full`
QUEUE_FULL_WORDS = "maximum pending requests exceeded"
SERVER_QUEUE_FULL = "server_queue_full"


def queue_full(message: str) -> tuple[str, str] | None:
    """(:data:`SERVER_QUEUE_FULL`, what to say) when ``message`` is Ollama's full queue (:data:`QUEUE_FULL_WORDS`),
    whichever of its endpoints said it; None for any other words."""
    if QUEUE_FULL_WORDS not in message:
        return None
    return SERVER_QUEUE_FULL, (f"Ollama's queue is full ({message}): more requests wait on its server than "
                               "OLLAMA_MAX_QUEUE allows")


def ollama_said(message: str) -> tuple[str, str] | None:
    """Ollama's words that decide more than their status, read alike through each of its APIs (/api/chat, its
    OpenAI-compatible /v1, its Anthropic-compatible /v1/messages — each provider's extract function asks here): its
    pending queue full (:func:`queue_full`: the next model, nothing cools), a model not pulled
    (:func:`~modelyard.providers.absence.not_pulled`: skipped a while, not cooled). None for any other words."""
    return queue_full(message) or not_pulled(message)


_TYPE_DECIDES = {SERVER_QUEUE_FULL: Reason.QUEUE_FULL, NOT_PULLED: Reason.MODEL_MISSING,
                 REFUSED: Reason.BAD_REQUEST, UNSUPPORTED: Reason.BAD_REQUEST, CONTEXT_FULL: Reason.BAD_REQUEST,
                 HISTORY_REFUSED: Reason.BAD_REQUEST, PAST_ALLOWANCE: Reason.BAD_REQUEST,
                 # llama-server's prompt past a slot's context, whatever its status: the builds of llama.cpp#15780
                 # answered it with a 500 (a server_error: asked again, refused again, counted against a well model)
                 EXCEED_CONTEXT: Reason.BAD_REQUEST,
                 NO_ROOM: Reason.MODEL_MISSING, NO_MEMORY: Reason.OVERLOADED,
                 NOT_CHAT: Reason.MODEL_MISSING, NOT_LOADED: Reason.MODEL_MISSING,
                 TOOL_USE_FAILED: Reason.UNUSABLE_REPLY, WRONG_ENDPOINT: Reason.MODEL_MISSING,
                 "generation": Reason.SERVER_ERROR, "incomplete_generation": Reason.SERVER_ERROR,
                 "overloaded": Reason.OVERLOADED, "validation": Reason.BAD_REQUEST}

#: Ollama could not read the model's own tool call: its harmony parser's "error parsing tool call: raw='<the model's
#: text>', err=invalid character ']' …" (server/harmonyparser.go; gpt-oss, ollama#17638: "Ollama cannot parse the
#: output it made itself") and the XML tool parsers' Go error "XML syntax error on line 35: element <parameter> closed
#: by </function>" (qwen3-coder). A 500, or an error line after the 200: it was a server_error / stream_error, asked
#: again and counted against the model, the model's raw text in the row. The answer was unusable, as a tool call
#: written as text is: the next model is asked, and the row keeps only the parser's error. Through Ollama's /v1 the
#: same words come in OpenAI's error object
UNPARSED_CALL = re.compile(r"^(?:error parsing tool call: raw='.*', err=(?P<err>.*)"
                           r"|XML syntax error on line \d+: .*)$", re.DOTALL)




def unparsed_call(server: str, words: str) -> str:
    """What is kept of an :data:`UNPARSED_CALL` refusal: the parser's error, not the model's text it quotes."""
    found = UNPARSED_CALL.match(words)
    err = found.group("err") if found else None
    return f"{server} could not parse the model's tool call" + (
        f" (its text left out): {err}" if err is not None else f": {words}")


#: how Ollama refuses to load a model the machine has no memory for now (a 500, on /api/chat and on its /v1), in the
#: words of each of its runners: "model requires more system memory (5.3 GiB) than is available (3.5 GiB)" — among the
#: errors its users meet most (continue#11478, home-assistant#139085) —, the new engine's "memory layout cannot be
#: allocated" (ollama#15517, 0.20.5), the llama.cpp runner's "llama runner process has terminated: error loading model:
#: unable to allocate backend buffer" (ollama#5958) and, its runner killed by ggml's allocator, "llama runner process
#: has terminated: CUDA error: out of memory" (ollama#9782; ggml-cuda's "CUDA error: out of memory", "ROCm error" on
#: AMD — ollama#3237, #2752, #6382), and since the llama-server runner (0.30, May 2026: llm/llama_server.go,
#: server/sched.go) "llama-server reported out-of-memory during startup: …" and "unable to load full model on GPU".
#: The model cannot load on this host *now*: other models hold the memory (Ollama keeps each loaded for its keep_alive,
#: 5 minutes unless set), a long context asked more. Not a missing model — that sent people to pull what they had —
#: and not a moment's fault worth asking again at once (it fails again at once): :data:`NO_MEMORY`, overloaded, the
#: next model asked at once and this one rested :data:`NO_MEMORY_WAIT`
NO_MEMORY_WORDS = re.compile(r"requires more (?:system |gpu |cuda )?memory|memory layout cannot be allocated"
                             r"|out-of-memory during startup|error loading model: unable to allocate"
                             r"|unable to load full model on gpu|\b(?:CUDA|ROCm|MUSA) error: out of memory",
                             re.IGNORECASE)
#: seconds a model the host has no memory for rests: Ollama's default keep_alive (``OLLAMA_KEEP_ALIVE:5m0s`` in its
#: server config line, ollama#6382), the longest another idle model holds its memory (capped by
#: ``cooldown.max_retry_after``)
NO_MEMORY_WAIT = 300.0
#: a model the server cannot load at all: one newer than the server ("llama-server process has terminated: exit
#: status 1: error loading model: unknown model architecture: 'mllama'", 0.30.5: ollama#16547; before, "unable to load
#: model: <blob>": ollama#14499, #12984), which holds until Ollama is upgraded.
#: LocalAI says it of a model none of its backends can load (a file missing or unreadable, a backend not installed, one
#: that dies loading it): "could not load model - all backends returned error: 25 errors occurred: …" as a 500
#: (LocalAI#1037, #1133 — langchain asking again and again), and in a stream after the 200 "failed to load model with
#: internal loader: backend not found: llama-cpp" (LocalAI#7899's log).
#: Each was a server_error — asked again at once, refused again — on every request until the breaker opened: it cools
#: as a model not there
NO_ROOM_WORDS = re.compile(r"unknown model architecture|unable to load model:"
                           r"|could not load model|failed to load model with internal loader", re.IGNORECASE)


def no_memory(message: str, status: int | None = None) -> ProviderError:
    """The error for a host with no memory for the model now (:data:`NO_MEMORY_WORDS`): overloaded, not asked again
    (``final``: it fails again at once), rested :data:`NO_MEMORY_WAIT`."""
    return ProviderError(Reason.OVERLOADED, message, status=status, retry_after=NO_MEMORY_WAIT, final=True)


#: statuses that say the server has no room for the request now: 503, Anthropic's 529, Groq's 498 "Flex Tier
#: Capacity Exceeded" (``capacity_exceeded``, documented as retryable: it was bad_request — never retried, and an
#: exhausted chain told the client not to retry)
_OVERLOADED_STATUSES = frozenset({498, 503, 529})


def reason_for_status(status: int, error_type: str = "") -> Reason:
    if status < 400:  # a redirect, not followed: the endpoint is configured wrong
        return Reason.MODEL_MISSING
    if error_type and (decided := _TYPE_DECIDES.get(error_type)) is not None:
        return decided
    if (status == 429 or error_type == "rate_limit_error") and error_type not in _BILLING_TYPES:
        return Reason.RATE_LIMITED
    if status in _OVERLOADED_STATUSES or error_type in ("overloaded_error", "capacity_exceeded"):
        return Reason.OVERLOADED
    if status in (401, 402, 403) or error_type in _BILLING_TYPES:
        return Reason.AUTH_ERROR
    if status >= 500 or status in _TRANSIENT_4XX:
        return Reason.SERVER_ERROR
    if status in (404, 405) or error_type in _MODEL_MISSING_TYPES:
        # the chat endpoint does not know this model (Ollama: "model 'x' not found"), or the endpoint is
        # wrong (a 405: the path takes no POST there, e.g. a web UI on the port the server was expected on): a
        # property of the model's configuration, not of this request
        return Reason.MODEL_MISSING
    return Reason.BAD_REQUEST


#: a refusal that speaks of the model (Ollama's "model 'x' not found", OpenAI's "The model `x` does not exist")
_OF_A_MODEL = re.compile(r"(?i)model")


def _where_asked(error: ProviderError, url: str) -> ProviderError:
    """A 404/405 that says nothing of the model — llama-server's "File Not Found", vLLM's and Starlette's "Not
    Found" for a path they do not serve — is the endpoint's path as often as the model: the URL asked is said. A
    newcomer's `provider: openai` with a wrong path read only "model_missing: HTTP 404: Not Found" (newcomer5's walk).
    """
    if error.status not in (404, 405) or error.reason is not Reason.MODEL_MISSING or _OF_A_MODEL.search(error.message):
        return error
    return error.reworded(f"{error.message} (POST {shown_url(url)}: no such path there? check the model's endpoint)")


def error_from_body(status: int, body: bytes, headers: Any, extract: Extract) -> ProviderError:
    """Build the error for a non-2xx answer; ``extract`` pulls (type, message) from the JSON body."""
    error_type, message = "", ""
    data: Any = None
    if status < 400:
        message = (f"redirects to {_snippet(headers.get('location') or '(nowhere)')}, not followed: "
                   "set the model's endpoint to where it points")
    else:
        try:
            data = json.loads(body)
            error_type, message = extract(data)
            if not message and not error_type:  # words its provider's reader does not look for: {"msg": …}
                message = error_words(data)
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
            message = _snippet(body[:4096].decode("utf-8", "replace").strip())
        error_type, message = said(error_type), said(message)
    reason = reason_for_status(status, error_type)
    if reason is Reason.BAD_REQUEST and (swap := refusal_reason(status, body, message)) is not None:
        reason = swap  # an empty 400 (a swapping proxy's moment), a model-swapper's "no handler" (llama_swap.py)
        message = message or "an empty answer: no refusal said (a model-swapping proxy's moment, llama-swap#635)"
    if status == 503 and not error_type and (reset := proxy_reset(body[:512].decode("utf-8", "replace"))) is not None:
        reason = reset  # Envoy's own reply: the server behind it down or gone, not a busy model (proxy_reset.py)
    should_retry = headers.get("x-should-retry", "").strip().lower()
    if (should_retry == "true" and status >= 400 and reason in _SAID_AGAIN and error_type not in _TYPE_DECIDES
            and error_type not in _BILLING_TYPES):
        # the server's own word that asking again helps, which the OpenAI and Anthropic SDKs obey before any status
        # rule (``_base_client._should_retry``): a 400, 404 or 413 so marked is a moment's refusal (a gateway whose
        # upstream hiccupped, a proxy's queue), not the request's fault nor the model's. As a bad_request it was never
        # asked again, and a chain that ended on it told the client its request was wrong; as model_missing or
        # auth_error the model cooled for cooldown.max_seconds. Words that decide the reason (an account that cannot
        # pay, a flagged input, no room for the model) still do
        reason = Reason.SERVER_ERROR
    retry_after = _said_wait(headers, "")
    if retry_after is None:
        # LiteLLM's proxy relays the upstream's headers renamed ``llm_provider-<name>`` (core_helpers.py,
        # process_response_headers: only OpenAI's six x-ratelimit-* pass unrenamed), its own 429 and 5xx with no
        # retry-after: the wait the upstream asked for was lost and the model cooled for the breaker's seconds
        retry_after = _said_wait(headers, _RELAYED)
    if retry_after is None and reason is Reason.OVERLOADED:
        retry_after = _estimated_time(data)
    if retry_after is None and reason is Reason.RATE_LIMITED:
        if isinstance(data, list) and len(data) == 1:  # Gemini's OpenAI-compatible endpoint: the error in a list
            data = data[0]
        retry_after = limit_reset(headers)
        if retry_after is None and isinstance(data, dict):
            retry_after = limit_reset(_metadata_headers(data))
            if retry_after is None:
                retry_after = _retry_delay(data)
        if retry_after is None:
            retry_after = wait_in_words(message)
    if error_type == NO_MEMORY:
        return no_memory(f"HTTP {status}: {message}", status)
    return ProviderError(
        reason,
        f"HTTP {status}" + (f" {error_type}" if error_type else "") + (f": {message}" if message else ""),
        status=status,
        retry_after=retry_after,
        # the server's own word on asking again, which the Anthropic and OpenAI SDKs obey before any status rule: an
        # Anthropic-compatible proxy that already spent its retries upstream (free-claude-code, earendil-works/pi#6586)
        # or another modelyard whose chain is exhausted (gateway/exhausted.py) says "false"; the same 529 or 502
        # was asked again here after a backoff, for the same answer. The next model is asked at once
        final=should_retry == "false",
        kind_refused=error_type == NOT_CHAT,
        absent=error_type == NOT_PULLED,  # Ollama's model not pulled: skipped a while, not cooled (absence.py)
        served_context=refused_context(data),  # llama-server's n_ctx, refusing a prompt past it: the router learns it
    )


#: the rate limits servers report per kind, each with what is left and when it resets: Anthropic's
#: ``anthropic-ratelimit-<kind>-remaining`` / ``-reset`` (an RFC 3339 time), OpenAI's (and vLLM-fronting proxies')
#: ``x-ratelimit-remaining-<kind>`` / ``x-ratelimit-reset-<kind>`` (a duration such as "1s", "6m0s", "20ms")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def limit_reset(headers: Any) -> float | None:
    """Seconds until the exhausted rate limit resets, from the rate-limit headers of a 429 that has no
    ``retry-after`` (Anthropic documents both; proxies drop one or the other): the latest reset among the limits
    whose remaining count is 0, or whose status is ``rejected`` (``anthropic-ratelimit-unified-*``: a subscription's
    windows, which give no count). None when no header says. Besides the per-kind pairs, the one pair without a kind
    (``x-ratelimit-remaining`` / ``x-ratelimit-reset``: OpenRouter's, whose reset is a time in epoch milliseconds)."""
    resets: list[float] = []
    for name, left in headers.items():
        name = name.lower()
        relayed = _RELAYED if name.startswith(_RELAYED) else ""  # through LiteLLM's proxy, renamed (error_from_body)
        name = name[len(relayed):]
        if name.startswith("x-ratelimit-remaining"):  # any kind: Cerebras' "-requests-day", "-tokens-minute"
            reset = "x-ratelimit-reset" + name[len("x-ratelimit-remaining"):]
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-remaining"):
            reset = name[:-len("remaining")] + "reset"
        elif name.startswith("anthropic-ratelimit-unified") and name.endswith("-status"):
            # a subscription's windows (five-hour, seven-day) say no count, only "rejected" and the epoch each
            # reopens; a 429 may come without retry-after (opencodex#3809, CLIProxyAPI#3148, sub2api#3249): it cooled
            # for the breaker's seconds and was asked, and refused, again and again until the window reopened
            reset = name[:-len("status")] + "reset"
            left = "0" if str(left).strip().lower() == "rejected" else left
        else:
            continue
        if str(left).strip() != "0" or not (value := str(headers.get(relayed + reset) or "").strip()):
            continue
        seconds = _reset_seconds(value)
        if seconds is not None:
            resets.append(seconds)
    return max(resets) if resets else None


#: a rate limit's wait said only in its words: Groq's and OpenAI's "Please try again in 5.289s" / "in 6m0s" / "in 859ms"
#: (relayed without the headers — Aider-AI/aider#3265 quotes Groq's through LiteLLM: "… Please try again in 5.289s."),
#: Azure OpenAI's "Please retry after 6 seconds."
_WAIT_WORDS = re.compile(r"(?:try again|retry) (?:in|after) ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+\b|\d+(?:\.\d+)?) ?"
                         r"(ms\b|seconds?|secs?|milliseconds?|minutes?|mins?|hours?|hrs?)?", re.IGNORECASE)
_WORD_UNIT = {"ms": 0.001, "millisecond": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0,
              "minute": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0}


def wait_in_words(message: str) -> float | None:
    """Seconds a rate limit's words ask for (:data:`_WAIT_WORDS`), or None. Unread, a 429 whose relay dropped the
    ``retry-after`` header cooled for the breaker's second and was asked, and refused, again at once."""
    said = _WAIT_WORDS.search(message)
    if said is None:
        return None
    amount, unit = said.groups()
    if unit is None:
        return _reset_seconds(amount)  # "5.289s", "6m0s", "859ms" (a Go duration), or plain seconds
    try:
        number = float(amount)
    except ValueError:
        return None
    unit = unit.lower()  # "ms" is a unit of its own, not "m" in the plural
    return number * _WORD_UNIT[unit if unit in _WORD_UNIT else unit.removesuffix("s")]


def _retry_delay(data: Any) -> float | None:
    """Google's wait in an error body: ``details[]`` holds ``{"@type": "type.googleapis.com/google.rpc.RetryInfo",
    "retryDelay": "37s"}`` (Gemini's API and its OpenAI-compatible endpoint, whose body is that object in a list)."""
    err = data.get("error") if isinstance(data, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    seconds = float(delay[:-1])
                except ValueError:
                    return None
                return seconds if 0 <= seconds < float("inf") else None
    return None


def _metadata_headers(data: dict[str, Any]) -> dict[str, str]:
    """The rate-limit headers OpenRouter puts in the body of its own 429 (``error.metadata.headers``: its free
    models' daily limit, "Rate limit exceeded: free-models-per-day", openclaude#936), by lower-cased name. That 429
    has no ``retry-after``: the model cooled for the breaker's seconds and was asked, and refused, on every request
    until the day's reset."""
    err = data.get("error")
    meta = err.get("metadata") if isinstance(err, dict) else None
    found = meta.get("headers") if isinstance(meta, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in found.items() if isinstance(v, str | int | float)}


def _estimated_time(data: Any) -> float | None:
    """How long a model still loads, from the body of a 503 that says (Hugging Face's serverless inference and its
    TGI endpoints: ``{"error": "Model … is currently loading", "estimated_time": 20.0}``, transformers#23793): the
    model cools that long instead of being asked again at once and counted as failing."""
    value = data.get("estimated_time") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < _LONGEST_ESTIMATE:
        return float(value)  # an integer past a float's range was an OverflowError here: internal_error
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message") == LOADING_SAID:
        return LOADING_WAIT
    return None


#: an ``estimated_time`` past this (a year) is no estimate (the cooldown's ``max_retry_after`` bounds any wait anyway)
_LONGEST_ESTIMATE = 365 * 86400.0
#: seconds a llama-server that says only "Loading model" rests (its 503 ``{"error": {"code": 503, "message": "Loading
#: model", "type": "unavailable_error"}}``, server.cpp's middleware while the weights load, no ``retry-after``, no
#: estimate): it was asked again at once, refused, and counted until its breaker opened, on every request of the load.
#: A small model loads in seconds; a longer load meets the breaker's probe, whose refusal doubles the rest
LOADING_WAIT = 5.0


#: a bare number above these is a time, not a wait: epoch milliseconds (OpenRouter's ``X-RateLimit-Reset``), epoch
#: seconds (a reset read as seconds to wait cooled the model for 55 years, or for ``max_retry_after``)
_EPOCH_MS, _EPOCH_S = 1e11, 1e9


def _reset_seconds(value: str) -> float | None:
    """A reset as an RFC 3339 time (Anthropic), a Go-style duration (OpenAI: "6m0s"), plain seconds, or a time in
    epoch seconds or milliseconds (OpenRouter)."""
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNIT[u] for n, u in parts)
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number != number or number == float("inf"):
            return None
        if number > _EPOCH_MS:
            number = number / 1000 - time()
        elif number > _EPOCH_S:
            number -= time()
        return max(0.0, number)
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time())
    except (TypeError, ValueError):
        return None


async def _read_capped(response: Response, limit: int = 65536) -> bytes:
    """An error's body, its first ``limit`` bytes or so, decoded (:mod:`modelyard.providers.coding`); one that opens
    compressed and does not decode says nothing (the status still does)."""
    try:
        return await read_capped(decoded(response.content, response.headers.get("content-encoding", "")), limit)
    except ProviderError:
        return b""


_JSON = {"content-type": "application/json"}


def dumps(body: Any) -> bytes:
    """A request body as JSON: orjson (~5x faster than the standard library on the hot path, issue #15);
    what orjson refuses (an integer beyond 64 bits, a non-string key) goes through ``json`` as before."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


#: what :func:`try_loads` returns for text that is not JSON (``None`` is JSON's null)
NOT_JSON: Any = object()


def try_loads(line: str | bytes) -> Any:
    """Parse JSON from a provider: orjson first; what it refuses and ``json`` accepts (a lone UTF-16
    surrogate escape from a JavaScript server, NaN, an integer beyond 64 bits) parses as it always did.
    :data:`NOT_JSON` when neither can."""
    try:
        return orjson.loads(line)
    except ValueError:
        pass
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes (orjson: 1024)
        return NOT_JSON


def loads(line: str | bytes, what: str) -> Any:
    """:func:`try_loads`, or malformed_response."""
    value = try_loads(line)
    if value is NOT_JSON:
        raise ProviderError(Reason.MALFORMED_RESPONSE, f"{what} is not valid JSON: {line[:80]!r}")
    return value


def tool_call(name: str, raw: Any, call_id: str = "") -> ToolCall:
    """The one policy for a call's arguments. Valid ones (an object, a JSON string of one, nothing) parse once,
    as always. Arguments that are no JSON object — a small local model's cut-off ``{"path": "a"``, trailing
    prose, single quotes, a list — do not fail the whole answer (they were malformed_response: with one model,
    "no model could answer"): the call carries them as written with the parser's word, the agent loop answers it
    with an error the model repairs, and the gateway passes the text on as OpenAI-compatible servers do."""
    if isinstance(raw, dict):
        return ToolCall(name, raw, call_id)
    if raw is None or raw == "":
        return ToolCall(name, {}, call_id)
    value = try_loads(raw) if isinstance(raw, str) else raw
    if isinstance(value, dict):
        return ToolCall(name, value, call_id)
    if isinstance(value, str) and isinstance(inner := try_loads(value), dict):
        # the arguments encoded twice, a JSON string whose text is the object: vLLM's hermes parser over a model
        # that writes them already serialized (Granite 4: vllm#54964, "the client receives a JSON string that decodes
        # to another JSON string instead of an object"). The call the model meant, not arguments it broke: passed on
        # as written, the client's one json.loads got a string and the agent loop told the model its call was wrong
        return ToolCall(name, inner, call_id)
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    if value is NOT_JSON:
        try:
            json.loads(text)
            problem = "not valid JSON"
        except (ValueError, RecursionError) as exc:
            problem = f"not valid JSON ({json_problem(exc)})"
    else:
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        problem = f"JSON but not an object ({kind})"
    return ToolCall(name, {}, call_id, raw=text, invalid=problem)
