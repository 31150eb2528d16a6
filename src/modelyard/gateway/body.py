"""Read a request body without trusting its size: a body over ``gateway.max_request_mb`` is refused
(413) from its declared length before any of it is read, or as soon as the bytes read pass the
bound (chunked uploads), so one oversized request cannot fill the gateway's memory; and the bodies being
received at once share a budget (``gateway.max_bodies_mb``: :class:`BodyBudget`), so many cannot either."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from starlette.requests import ClientDisconnect, Request

from modelyard.gateway.wire import BadRequest
from modelyard.providers.coding import zstd_module


def _mb(size: float) -> str:
    return f"{size / 2**20:.3g} MB"


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int, *, declared: bool, setting: str = "gateway.max_request_mb"):
        self.size, self.limit, self.declared = size, limit, declared
        size_text = _mb(size) if declared else f"more than {_mb(limit)}"
        super().__init__(f"the request body is {size_text}; this gateway accepts at most {_mb(limit)} "
                         f"({setting})")


class BodyBudget:
    """The bytes of request bodies being received, all requests together, and their bound: ``max_request_mb`` bounds
    one body, not how many come at once — N clients each sending just under it held N times it. A body takes its
    declared length from the budget before any of it is read (a client trickling a large body holds its share from
    the start, not as it comes), one without a length (chunked) takes what came as it comes; both give it back once
    the body is whole (or refused). Two additions and a comparison per request: nothing per piece of a body with a
    length."""

    __slots__ = ("held", "total")

    def __init__(self, total: int):
        self.total = total
        self.held = 0


class BodiesFull(Exception):
    """The bodies being received already hold the gateway's budget for them: a 503 to try again shortly."""

    def __init__(self, size: int, budget: BodyBudget):
        super().__init__(f"this gateway is receiving {_mb(budget.held)} of request bodies already and takes at most "
                         f"{_mb(budget.total)} at once (gateway.max_bodies_mb); this one is {_mb(size)}"
                         + ("" if size else " so far") + ": try again shortly")


def header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase: ASGI servers give names in lowercase), as Starlette's
    ``request.headers.get`` reads it, without building its ``Headers`` (issue #15: a model request asks for two)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(request: Request, limit: int, budget: BodyBudget) -> bytes:
    # the head by name, as the app's dispatch made it for a hot route (gateway/app.py): one lookup in C where header()
    # is a Python loop over every header (issue #15); the parser refuses a second Content-Length, so the last is the one
    by_name: dict[bytes, bytes] | None = getattr(request, "by_name", None)
    declared = by_name.get(b"content-length", b"") if by_name is not None \
        else (header(request, b"content-length") or "").encode("latin-1")
    taken = int(declared) if declared.isdigit() else 0
    if taken > limit:
        raise BodyTooLarge(taken, limit, declared=True)
    if budget.held + taken > budget.total:
        if taken > budget.total:  # never fits, however quiet the gateway
            raise BodyTooLarge(taken, budget.total, declared=True, setting="gateway.max_bodies_mb")
        raise BodiesFull(taken, budget)
    budget.held += taken
    pieces: list[bytes] = []
    size = 0
    receive = request.receive
    try:
        while True:  # what request.stream() does, without its async generator (issue #15)
            message = await receive()
            if message["type"] == "http.request":
                piece = message.get("body", b"")
                size += len(piece)
                if size > taken:  # no length (chunked): taken from the budget as it comes
                    if size > limit:
                        raise BodyTooLarge(size, limit, declared=False)
                    if budget.held + size - taken > budget.total:
                        raise BodiesFull(size, budget)
                    budget.held += size - taken
                    taken = size
                pieces.append(piece)
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
    finally:
        budget.held -= taken
    request._stream_consumed = True  # as stream() leaves it: a second read says so instead of waiting
    body = b"".join(pieces)
    if body[:1] != b"{" or body[1:2] == b"\x00":  # every JSON request starts so (issue #15); "{\0": UTF-16LE
        encoding = (header(request, b"content-encoding") or "").lower()
        # "gzip, zstd": codings listed in the order applied (RFC 9110 §8.4), so undone last first
        for coding in reversed([c for c in map(str.strip, encoding.split(",")) if c and c != "identity"]):
            body = decoded(body, coding, limit)
        body = utf8(body)
    if (b"NaN" in body or b"Infinity" in body) and _NON_FINITE.search(body):  # two scans in C; the rest only then
        refuse_non_finite(body)
    return body


#: a NaN or Infinity where a JSON value starts (the search's first cut: in a string's text it is looked at again)
_NON_FINITE = re.compile(rb"[:,\[]\s*-?(?:NaN|Infinity)")
_CONSTANT = object()


def refuse_non_finite(body: bytes) -> None:
    """A 400 naming the field a ``NaN``/``Infinity`` literal stands in: JSON has no such numbers (RFC 8259 §6: "Numeric
    values that cannot be represented … (such as Infinity and NaN) are not permitted"); OpenAI's and Anthropic's APIs
    and Ollama's Go decoder refuse the body. Read here (pydantic's parser takes them) they were a misleading
    "temperature: Input should be less than or equal to 2", or — in a tool's schema, a ``format``, Ollama's
    ``options`` — sent on as ``null`` (orjson writes it so): a request changed without a word. A body that is no
    JSON otherwise is left to the parser's own message."""
    try:
        parsed = json.loads(body, parse_constant=lambda _: _CONSTANT)
    except (ValueError, RecursionError):
        return
    where = _path_to(parsed)
    if where is not None:
        named = where or "the request body"
        raise BadRequest(f"{named}: NaN and Infinity are not JSON numbers (RFC 8259); send a number, or null",
                         where or None)


def _path_to(value: Any) -> str | None:
    """The path (``tools[0].function.parameters.maximum``) of the first :data:`_CONSTANT` in ``value``, breadth
    first; None when there is none."""
    queue: list[tuple[str, Any]] = [("", value)]
    for path, item in queue:
        if item is _CONSTANT:
            return path
        if isinstance(item, dict):
            queue.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            queue.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return None


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
         (b"\xfe\xff", "utf-16"))


def utf8(body: bytes) -> bytes:
    """The JSON text as UTF-8. A byte order mark is not part of it: UTF-8's is dropped (a file saved by
    Windows tools); a UTF-16 or UTF-32 text with one is re-encoded — Windows PowerShell 5.1's ``Out-File``
    and ``>`` write UTF-16LE, so ``curl.exe -d @req.json`` sends it (was a 400 'not a JSON object')."""
    if body[:3] == b"\xef\xbb\xbf":
        return body[3:]
    for bom, codec in _BOMS:
        if body.startswith(bom):
            try:
                return body.decode(codec).removeprefix("\ufeff").encode()
            except UnicodeError:
                raise BadRequest(f"the request body starts with a {codec.upper()} byte order mark but is not "
                                 f"{codec.upper()} text; send UTF-8", None) from None
    if b"\x00" in body[:4]:  # no UTF-8 JSON text holds a NUL byte: UTF-16 or UTF-32 with no byte order mark
        raise BadRequest(f"the request body is {_wide(body)} text, not UTF-8: JSON is sent as UTF-8 (RFC 8259 §8.1); "
                         "save the file as UTF-8 (or send it with a byte order mark)", None)
    return body


def _wide(body: bytes) -> str:
    """The encoding RFC 4627 §3 reads off where the first two characters' NUL bytes fall (JSON's are ASCII)."""
    if body[:2] == b"\x00\x00":
        return "UTF-32BE"
    if body[:1] == b"\x00":
        return "UTF-16BE"
    if body[1:4] == b"\x00\x00\x00":
        return "UTF-32LE"
    return "UTF-16LE" if body[1:2] == b"\x00" else "UTF-16 or UTF-32"


def decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """A compressed body (Codex compresses large ``/v1/responses`` bodies with zstd; some HTTP clients
    gzip), decompressed to at most ``limit`` bytes — a small bomb cannot fill the memory either.
    Read as JSON it was a 400 'not a JSON object' that said nothing of why."""
    try:
        if encoding in ("gzip", "x-gzip", "deflate"):
            inflater = zlib.decompressobj(47)  # 47: a gzip or a zlib header, whichever it has
            out = inflater.decompress(body, limit + 1)
            while inflater.eof and inflater.unused_data[:2] == b"\x1f\x8b" and len(out) <= limit:
                # a gzip file of several members (RFC 1952 §2.2: gzip -c a b, pigz, a stream gzipped piece by piece)
                # is their texts one after another, as gunzip reads it: only the first was read, "not a JSON object";
                # other bytes after a member (zeros of padding) are left unread, as they always were
                inflater, rest = zlib.decompressobj(47), inflater.unused_data
                out += inflater.decompress(rest, limit + 1 - len(out))
            if not inflater.eof and not inflater.unconsumed_tail:
                raise BadRequest(f"the request body is a truncated {encoding} stream", None)
        elif encoding == "zstd":
            out = _zstd(body, limit + 1)
        else:
            raise BadRequest(f"Content-Encoding {encoding!r} is not supported: send the body as it is, "
                             "or gzip, deflate or zstd", None)
    except zlib.error as exc:
        raise BadRequest(f"the request body is not valid {encoding} ({exc})", None) from None
    if len(out) > limit:
        raise BodyTooLarge(limit + 1, limit, declared=False)
    return out


def _zstd(body: bytes, most: int) -> bytes:
    """The first zstd frame of ``body``, at most ``most`` bytes of it: Python's ``compression.zstd`` from 3.14, its
    backport before (the decoder providers/coding.py reads answers with: one zstd library, not two)."""
    zstd = zstd_module()
    if zstd is None:  # a dependency; a copy installed without it still says what to do
        raise BadRequest("Content-Encoding 'zstd' needs the backports.zstd package here (pip install backports.zstd); "
                         "or send the body as it is, or gzip it", None)
    decoder = zstd.ZstdDecompressor()
    try:
        out = bytes(decoder.decompress(body, most))
    except zstd.ZstdError as exc:
        raise BadRequest(f"the request body is not valid zstd ({exc})", None) from None
    if not decoder.eof and decoder.needs_input:  # the frame's last block never came: a body cut short
        raise BadRequest("the request body is a truncated zstd stream", None)  # (was 'not a JSON object')
    return out
