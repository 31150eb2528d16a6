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

A body without ``content-encoding`` (every normal answer) is not wrapped: its reads are aiohttp's own.
"""

from __future__ import annotations

import zlib
from typing import Protocol

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
    header — or, labelled ``deflate``, raw deflate as aiohttp read it when it opens as no text does — is decoded,
    at most :data:`PIECE` bytes a read, and fails as malformed_response where it does not decode; a body that opens
    as text is read as it is. br and zstd bodies that open as no text cannot be read here (aiohttp read them only
    with modules not installed, and did not ask for them)."""

    __slots__ = ("_coding", "_content", "_inflater", "_plain", "_tail")

    def __init__(self, content: Readable, coding: str):
        self._content = content
        self._coding = coding
        self._inflater: zlib._Decompress | None = None
        self._plain = False
        #: compressed bytes held back by the last read's bound
        self._tail = b""

    async def readany(self) -> bytes:
        """The next decoded bytes, or ``b""`` at the end of the body."""
        while True:
            if self._tail:
                data, self._tail = self._tail, b""
            else:
                data = await self._content.readany()
                if not data or self._plain:
                    return data
            inflater = self._inflater
            if inflater is None:
                inflater = self._opening(data)
                if inflater is None:
                    self._plain = True
                    return data
            try:
                out = inflater.decompress(data, PIECE)
            except zlib.error:
                raise _not_decoded(self._coding) from None
            self._tail = inflater.unconsumed_tail
            if out:
                return out

    def _opening(self, data: bytes) -> zlib._Decompress | None:
        """The decompressor for a body that opens with ``data``, or None: it is not compressed."""
        self._inflater = None
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
