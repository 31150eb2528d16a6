"""Small response helpers: JSON bodies, OpenAI-shaped errors, routing headers, an SSE response
that cancels its producer when the client disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.gateway.disconnect import ClientGone, say_why_gone, until_disconnect
from modelyard.gateway.drain import SHUTTING_DOWN, Drain
from modelyard.gateway.transport import VALUE_REFUSED
from modelyard.gateway.wire import error_body
from modelyard.ledger.cost import PRICE_UNKNOWN, billed_at_zero
from modelyard.outcomes import AttemptOutcome
from modelyard.router.records import RequestRecord

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                500: "server_error", 503: "server_error"}


def dumps(payload: Any) -> bytes:
    """JSON for a response: orjson (a tenth of the standard library's time for an answer, issue #15);
    what orjson refuses (a lone UTF-16 surrogate in a model's text, an integer beyond 64 bits) goes
    through ``json`` as before."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(payload).encode()


class JSONBody(Response):
    """Starlette's ``Response`` for a JSON body, its headers listed as Starlette lists them (the given ones, then
    content-length and content-type) without its general checks: ~2% of a model answer's bytecodes (issue #15).
    Given :func:`route_headers`' answer, its head is written out here too (``head``: every header line after the
    server's own, checked as uvicorn checks them), for :func:`~modelyard.gateway.transport.send_whole`."""

    media_type = "application/json"
    #: the header lines as they leave (lower-case names, each ``name: value\r\n``), every byte one uvicorn lets
    #: through; None: not known, send_whole lists and checks them itself
    head: bytes | None = None

    def __init__(self, body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None):
        """Starlette's ``Response.__init__`` for a body already rendered, without its ``render`` call and media-type
        step (issue #15)."""
        self.status_code = status_code
        self.background = None
        self.body = body
        self.init_headers(headers)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        plain = self.status_code >= 200 and self.status_code not in (204, 304)
        if type(headers) is RouteHeaders and plain:
            length = b"%d" % len(self.body)
            rid, part = headers.rid, headers.part
            self.raw_headers = [(_RID, rid), *part.raw, (b"content-length", length), _JSON_TYPE]
            if part.lines is not None and len(rid.translate(None, VALUE_REFUSED)) == len(rid):
                self.head = b"".join((_RID_LINE, rid, b"\r\n", part.lines, b"content-length: ", length,
                                      _JSON_TYPE_LINE))
            return
        if headers is not None and not _PLAIN.isdisjoint(k.lower() for k in headers):
            return super().init_headers(headers)  # a length or type of its own: Starlette's rules
        raw = [] if headers is None else [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                          for k, v in headers.items()]
        if plain:
            raw.append((b"content-length", b"%d" % len(self.body)))
        raw.append(_JSON_TYPE)
        self.raw_headers = raw


_PLAIN = frozenset({"content-length", "content-type"})
_JSON_TYPE = (b"content-type", b"application/json")
_JSON_TYPE_LINE = b"\r\ncontent-type: application/json\r\n"
_RID = b"x-modelyard-request-id"
_RID_LINE = _RID + b": "


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONBody(dumps(payload), status, headers)


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    body = error_body(message, kind, param, code, **extra)
    return json_response(body, status, headers)


def reshaped_error(response: Response, render: Callable[[int, dict[str, Any]], dict[str, Any]]) -> Response:
    """An error the shared steps rendered in OpenAI's shape (intake, an exhausted chain), re-rendered for
    another API (Anthropic's, Ollama's) by ``render(status, error)``; same status and headers. Any other
    response passes through."""
    if response.status_code < 400 or not response.body:
        return response
    try:
        error = orjson.loads(response.body).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return response
    headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
    return json_response(render(response.status_code, error), response.status_code, headers)


def error_extras(error: dict[str, Any]) -> dict[str, Any]:
    """What modelyard adds to an error beyond its message and type (code, param, attempts, retryable)."""
    return {k: v for k, v in error.items() if k not in ("message", "type") and v is not None}


#: what stays itself in a header value written percent-encoded: printable ASCII but the '%' that escapes
_KEPT = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def _ascii(value: str) -> str:
    """``value`` as a header carries it: ASCII as it is; else percent-encoded UTF-8 (RFC 3986's escaping, which
    ``urllib.parse.unquote`` / ``decodeURIComponent`` read back) — an agent called 写作 was sent as '??', and two such
    agents alike, so a client could not tell who answered."""
    return value if value.isascii() else quote(value, safe=_KEPT)


def route_summary(record: RequestRecord) -> str:
    """``claude-haiku skipped missing_credentials, qwen ok``: every attempt with why it moved on; an answering one
    with its note (``claude ok (max_tokens 200000 clamped to 64000, …)``: a clamped budget is never silent); one a
    billed model without a price answered with tokens, ``(price unknown)`` (ledger/cost.py: not free)."""
    return ", ".join(f"{a.model} {a.outcome}" + (f" {a.reason}" if a.reason else "")
                     + (f" ({a.detail})" if a.detail and a.outcome is AttemptOutcome.OK else "")
                     + (f" ({PRICE_UNKNOWN})"
                        if billed_at_zero(a.provider, a.cost_usd, a.tokens_in, a.tokens_out, a.billed) else "")
                     for a in record.attempts)


#: appended to the route of an answer cut off at its token limit (finish_reason "length")
TRUNCATED = " (truncated: length)"


class _RoutePart:
    """What the route headers of a request carry besides its id — the same for every answer by one route — as
    strings, as the pairs a response lists and as the lines it writes (None if uvicorn would refuse a byte)."""

    __slots__ = ("agent", "lines", "model", "raw", "route")

    def __init__(self, agent: str, route: str, model: str) -> None:
        self.agent, self.route, self.model = _ascii(agent), _ascii(route), _ascii(model) if model else ""
        raw = [(b"x-modelyard-agent", self.agent.encode()), (b"x-modelyard-route", self.route.encode())]
        if model:
            raw.append((b"x-modelyard-model", self.model.encode()))
        self.raw = raw
        values = b"".join(value for _, value in raw)
        self.lines = b"".join(name + b": " + value + b"\r\n" for name, value in raw) \
            if len(values.translate(None, VALUE_REFUSED)) == len(values) else None


class RouteHeaders(dict[str, str]):
    """:func:`route_headers`' answer: the headers by name, and what a response needs to list and write them without
    encoding each again (``rid``, ``part``). Not changed once made (a changed copy is a plain dict)."""

    __slots__ = ("part", "rid")
    rid: bytes
    part: _RoutePart


#: route parts by (agent, route, model): a route's headers are encoded once (issue #15); forgotten past _PARTS_KEPT
_parts: dict[tuple[str, str, str], _RoutePart] = {}
_PARTS_KEPT = 512


def route_headers(record: RequestRecord, *, truncated: bool = False) -> dict[str, str]:
    """Who answered and how. ``truncated``: the answer hit its token limit — said in the route, so a cut-off
    answer is never taken for a whole one (a live stream's headers leave before its end: its last chunk says it)."""
    key = (record.agent, route_summary(record) + (TRUNCATED if truncated else ""), record.model or "")
    part = _parts.get(key)
    if part is None:
        if len(_parts) >= _PARTS_KEPT:
            _parts.clear()
        part = _parts[key] = _RoutePart(*key)
    headers = RouteHeaders({"x-modelyard-request-id": record.id, "x-modelyard-agent": part.agent,
                            "x-modelyard-route": part.route})
    if part.model:
        headers["x-modelyard-model"] = part.model
    headers.rid = record.id.encode("latin-1")
    headers.part = part
    return headers


def attempts_out(record: RequestRecord) -> list[dict[str, Any]]:
    return [{"model": a.model, "outcome": a.outcome, "reason": a.reason or None, "detail": a.detail or None}
            for a in record.attempts]


async def replayed(events: list[bytes]) -> AsyncGenerator[bytes, None]:
    """Events rendered at once (a buffered answer's) as the generator an :class:`SSEResponse` streams."""
    for event in events:
        yield event


async def until_drained(drain: Drain, work: Awaitable[Response]) -> Response:
    """Answer a request, tracked by ``drain``: if the server shuts down first, a 503 with ``Retry-After``
    (gateway/drain.py) instead of a cancelled task and its traceback."""
    task = drain.enter()
    try:
        return await work
    except asyncio.CancelledError:
        if not drain.stopped():
            raise
        return error_response(503, SHUTTING_DOWN, code="shutting_down", headers={"retry-after": "5"})
    finally:
        drain.leave(task)


_SSE_FIXED = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


class SSEResponse(Response):
    """Streams pre-rendered SSE events; a client disconnect cancels the producer (and its upstream call).
    When the server shuts down (``drain``), the producer is cancelled too and the stream ends with
    ``final``, an error event, instead of stopping mid-answer."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], headers: dict[str, str], *, drain: Drain | None = None,
                 final: bytes | Callable[[], bytes] = b"", content_type: str = "text/event-stream; charset=utf-8"):
        # not Response.__init__: it would add "content-length: 0" to a body of unknown length
        self.status_code = 200
        self.background = None
        if type(headers) is RouteHeaders:  # encoded once per route (issue #15)
            self.raw_headers = [(b"content-type", content_type.encode("latin-1")), *_SSE_FIXED,
                                (_RID, headers.rid), *headers.part.raw]
        else:
            all_headers = {"content-type": content_type, "cache-control": "no-cache",
                           "x-accel-buffering": "no", **headers}
            self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in all_headers.items()]
        self.events = events
        self.drain = drain
        self.final = final

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        with contextlib.suppress(ClientGone), self._tracked():  # gone: the producer is already cancelled
            await until_disconnect(receive, self._pump(send, scope), scope)

    def _tracked(self) -> contextlib.AbstractContextManager[None]:
        return self.drain.track() if self.drain is not None else contextlib.nullcontext()

    async def _pump(self, send: Send, scope: Scope) -> None:
        try:
            try:
                async for event in self.events:
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            except asyncio.CancelledError:
                if self.drain is None or not self.drain.stopped():
                    say_why_gone(scope)  # before the events close and the row is written
                    raise
                await self.events.aclose()  # upstream stopped, its row logged
                final = self.final() if callable(self.final) else self.final
                await send({"type": "http.response.body", "body": final, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.events.aclose()
