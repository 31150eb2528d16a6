"""An answer's content coding, undone here rather than by aiohttp: a proxy may say ``content-encoding: gzip`` over a
body it already decompressed.

Such proxies are common in front of model servers: their HTTP client (httpx, Node's fetch) decompresses the
upstream's answer for them but keeps its ``content-encoding``, and the proxy copies that header onto the plain body it
passes on (qualixar/superlocalmemory#79, a proxy in front of Claude Code: "httpx automatically decompresses gzip
responses but leaves the Content-Encoding header intact"; freelensapp/freelens-ai-extension#272, an AI proxy:
"receives plain JSON labelled ``Content-Encoding: gzip``"; aiohttp's own words for it, "Can not decode
content-encoding: gzip", antergone/palm-netlify-proxy#12). aiohttp failed such a body and threw its bytes away: a
whole answer was malformed_response. The body's first bytes say what it is: gzip's magic (RFC 1952 §2.3.1) or a zlib
header (RFC 1950 §2.2) open a compressed body; one that opens as text is the text it is. A body that opens
compressed and does not decode is still malformed_response.

br (RFC 7932) and zstd (RFC 8878) are decoded here too, by the ``brotli`` package and Python's ``compression.zstd``
(``backports.zstd`` before 3.14), both installed with modelyard: modelyard asks only for gzip and deflate
(``HttpClient``'s ``Accept-Encoding``), but a relay passes on the bytes of its upstream's answer under the upstream's
coding whatever its own client was offered (a Node or Go proxy that asked for br itself), and aiohttp asked for br on
its own wherever ``Brotli`` happened to be installed. Such a body was malformed_response: the answer lost, the model
counted broken. zstd opens with its frame's magic (RFC 8878 §3.1.1); br has none (its first byte is the window's
size, RFC 7932 §9.2, a text byte for many: "[" at the default window), so a body labelled br that opens as text is
told by decoding it: text fails within a few bytes (see :attr:`Decoding._raw`) and is read as the text it is.

A body without ``content-encoding`` (every normal answer) is not wrapped: its reads are aiohttp's own.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

from modelyard.errors import ProviderError, Reason

#: the codings aiohttp decoded (its parser reads no other); any other value leaves a body as it is, as aiohttp did
CODINGS = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd"})
#: gzip's ID1 ID2 (RFC 1952 §2.3.1): every gzip member opens with them
GZIP_MAGIC = b"\x1f\x8b"
#: bytes a body of text opens with (an event stream, JSON lines, a JSON document, an HTML page; the UTF-8 byte
#: order mark's first byte): none opens a gzip member or a zlib stream that is not also checked for its header
TEXT_OPENING = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\n\r\xef")
#: decompressed bytes handed over per read at most: a small compressed body (a bomb) cannot fill the memory at once
PIECE = 2**16
#: a zstd frame's magic number, little-endian (RFC 8878 §3.1.1)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _module(*names: str) -> Any:
    """The first of ``names`` that imports, or None. Imported when a body needs it (never on a plain answer's path,
    nor at start-up)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def zstd_module() -> Any:
    """Python's ``compression.zstd`` (3.14 on) or its backport, or None: one zstd library for answers read here and
    requests the gateway reads (gateway/body.py)."""
    return _module("compression.zstd", "backports.zstd")


class _Brotli:
    """The ``brotli`` package's decoder behind zlib's interface as :class:`Decoding` uses it: at most ``limit`` bytes a
    call; :attr:`pending` when more output waits for a call with no input (brotli ≥ 1.2, whose bound closed
    CVE-2025-6176: an unbounded call let a small body fill the memory)."""

    __slots__ = ("_decoder", "_error", "pending")
    unconsumed_tail = b""

    def __init__(self, module: Any):
        self._decoder = module.Decompressor()
        self._error = module.error
        self.pending = False

    def decompress(self, data: bytes, limit: int) -> bytes:
        try:
            out: bytes = self._decoder.process(data, limit)
        except self._error as exc:
            raise ValueError(str(exc)) from exc
        # its bound is loose (it returns up to 1.5× it) and more output may wait where it can take more input: asked
        # again with none until a call gives nothing, as aiohttp does ("the only way to know")
        self.pending = not self._decoder.can_accept_more_data() or (bool(out) and not self._decoder.is_finished())
        return out

    def unfinished(self) -> bool:
        """The br stream has not reached its end: a body that ends here was cut short."""
        return not self._decoder.is_finished()


class _Zstd:
    """zstd's decoder (``compression.zstd``, or its backport) behind the same interface; a body of several frames
    (a proxy that compresses each flush on its own) is read frame after frame."""

    __slots__ = ("_decoder", "_error", "_kind", "pending")
    unconsumed_tail = b""

    def __init__(self, module: Any):
        self._kind = module.ZstdDecompressor
        self._error = module.ZstdError
        self._decoder = self._kind()
        self.pending = False

    def decompress(self, data: bytes, limit: int) -> bytes:
        decoder = self._decoder
        if decoder.eof:  # the next frame
            data = decoder.unused_data + data
            if not data:
                return b""
            decoder = self._decoder = self._kind()
        try:
            out: bytes = decoder.decompress(data, limit)
        except self._error as exc:
            raise ValueError(str(exc)) from exc
        self.pending = bool(decoder.unused_data) if decoder.eof else not decoder.needs_input
        return out

    def unfinished(self) -> bool:
        """The current zstd frame has not reached its end: a body that ends here was cut short."""
        return not self._decoder.eof


def _decoder(coding: str) -> _Brotli | _Zstd | None:
    """A decoder for ``coding`` (br or zstd), or None where its module is not installed."""
    if coding == "br":
        module = _module("brotli", "brotlicffi")
        return _Brotli(module) if module is not None and hasattr(module.Decompressor, "can_accept_more_data") else None
    module = zstd_module()
    return _Zstd(module) if module is not None else None


class Readable(Protocol):
    """What the readers of a body use of aiohttp's ``StreamReader``."""

    async def readany(self) -> bytes: ...


def decoded(content: Readable, coding: str) -> Readable:
    """``content`` read through its ``content-encoding`` (``coding``, the header's value), or as it is."""
    coding = coding.strip().lower()
    return Decoding(content, coding) if coding in CODINGS else content


def _not_decoded(coding: str) -> ProviderError:
    return ProviderError(Reason.MALFORMED_RESPONSE, f"the answer's {coding} encoding does not decode")


class Decoding:
    """A body read through its content coding, chosen by its first bytes (see the module): gzip's magic, a zlib
    header — or, labelled ``deflate``, raw deflate as aiohttp read it when it opens as no text does —, a zstd frame,
    a br stream, is decoded, at most :data:`PIECE` bytes a read, and fails as malformed_response where it does not
    decode; a body that opens as text is read as it is."""

    __slots__ = ("_coding", "_content", "_inflater", "_plain", "_raw", "_tail")

    def __init__(self, content: Readable, coding: str):
        self._content = content
        self._coding = coding
        self._inflater: zlib._Decompress | _Brotli | _Zstd | None = None
        self._plain = False
        #: compressed bytes held back by the last read's bound
        self._tail = b""
        #: a body labelled br that opens as text could be either (br has no magic number, and its first byte is a
        #: text byte for many windows and sizes: 0x5b, "[", at quality 2 and up with the default window): its bytes
        #: are held until the decoder gives out bytes (br) or fails (text: each text opening tried failed within 11
        #: bytes); None once that is known
        self._raw: bytes | None = None

    async def readany(self) -> bytes:
        """The next decoded bytes, or ``b""`` at the end of the body."""
        while True:
            inflater = self._inflater
            if self._tail:
                data, self._tail = self._tail, b""
            elif getattr(inflater, "pending", False):
                data = b""  # br's or zstd's output held back by the last read's bound
            else:
                data = await self._content.readany()
                if self._plain:
                    return data
                if not data:
                    if self._raw is not None:  # ended before it told: the text it is
                        return self._as_text(b"")
                    if isinstance(inflater, (_Brotli, _Zstd)) and inflater.unfinished():
                        raise _not_decoded(self._coding)  # the body ended inside its br or zstd stream
                    return data
            if inflater is None:
                inflater = self._opening(data)
                if inflater is None:
                    self._plain = True
                    return data
            try:
                out = inflater.decompress(data, PIECE)
            except (zlib.error, ValueError, EOFError) as exc:  # br's and zstd's errors made ValueErrors
                if self._raw is not None:
                    return self._as_text(data)
                raise _not_decoded(self._coding) from exc
            self._tail = inflater.unconsumed_tail
            if self._raw is not None:
                self._raw = None if out or len(self._raw) > PIECE else self._raw + data
            if out:
                return out

    def _as_text(self, data: bytes) -> bytes:
        """The held bytes and ``data``: a body labelled br that is text."""
        text, self._raw, self._inflater, self._plain = (self._raw or b"") + data, None, None, True
        return text

    def _opening(self, data: bytes) -> zlib._Decompress | _Brotli | _Zstd | None:
        """The decompressor for a body that opens with ``data``, or None: it is not compressed."""
        self._inflater = None
        if self._coding == "br" or (self._coding == "zstd" and ZSTD_MAGIC.startswith(data[:4])):
            self._inflater = _decoder(self._coding)
            if self._inflater is not None:
                if self._coding == "br" and data[0] in TEXT_OPENING:
                    self._raw = b""  # br or text: told by what it decodes to (see _raw)
                return self._inflater
        if GZIP_MAGIC.startswith(data[:2]):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif len(data) > 1 and data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
        elif data[0] in TEXT_OPENING:
            return None
        elif self._coding == "deflate":
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        else:
            raise _not_decoded(self._coding)
        return self._inflater


async def read_capped(content: Readable, limit: int) -> bytes:
    """The body's first ``limit`` bytes or so (the read that passes it is kept whole)."""
    data = b""
    while piece := await content.readany():
        data += piece
        if len(data) >= limit:
            break
    return data
