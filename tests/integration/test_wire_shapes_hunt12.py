"""The twelfth fault hunt (faults25): an answer whose ``content-encoding`` says gzip (or deflate, or br) over the plain
bytes a proxy already decompressed (qualixar/superlocalmemory#79, freelensapp/freelens-ai-extension#272; the fake in
:func:`tests.fakes.relays.decoded_by_proxy`), replayed through the router in all three wire formats, streamed and
whole. aiohttp failed each as an encoding that does not decode: malformed_response, the answer lost and the model
counted broken. Each test failed on the code before this hunt, but the guards (named so).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.fakes.relays import SSE, decoded_by_proxy
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes_round3 import outcomes, route

from modelyard.providers.coding import Decoding

OK = [("primary", "ok", None)]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama"])
async def test_a_stream_a_proxy_decompressed_under_its_encoding_is_read_as_text(
        servers: dict[str, Any], tmp_path: Path, kind: str, coding: str) -> None:  # noqa: F811
    """A proxy copied the upstream's ``content-encoding`` onto the stream its HTTP client had decompressed
    (superlocalmemory#79: httpx's, in front of Claude Code, "caused double-decompression and a ZlibError";
    freelens-ai-extension#272: Node's fetch, "plain JSON labelled Content-Encoding: gzip"). aiohttp could not decode
    it ("Can not decode content-encoding: gzip", antergone/palm-netlify-proxy#12): malformed_response. Its first
    bytes open no gzip member nor zlib stream but text: the answer, read as the text it is."""
    routed = await route(kind, servers, tmp_path, decoded_by_proxy(kind, coding))
    assert outcomes(routed) == OK, routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_whole_answer_a_proxy_decompressed_under_gzip_is_read_as_text(
        servers: dict[str, Any], tmp_path: Path, kind: str) -> None:  # noqa: F811
    """The same proxy in front of a server that answers the whole completion as one JSON document (freelens's
    case was a JSON document): malformed_response; now the answer."""
    routed = await route(kind, servers, tmp_path, decoded_by_proxy(kind, whole=True))
    assert outcomes(routed) == OK, routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."


async def test_an_error_a_proxy_decompressed_under_gzip_keeps_its_status(servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """The proxy passes an error on the same way: its 429 under ``content-encoding: gzip`` broke as the body was read
    (connection_dropped, its words lost). Now the server's rate limit, in its words."""
    routed = await route("openai", servers, tmp_path, decoded_by_proxy("openai", status=429))
    assert outcomes(routed)[0] == ("primary", "retry", "rate_limited"), routed.record.attempts[0].detail
    assert "Rate limit reached" in (routed.record.attempts[0].detail or "")


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_guard_a_real_compressed_whole_answer_is_still_decoded(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path, coding: str) -> None:
    """Guard (held already, aiohttp decoded it): a whole answer truly compressed — gzip (RFC 1952), deflate as a zlib
    stream (RFC 1950) — is decoded, now by :mod:`modelyard.providers.coding`."""
    plain = decoded_by_proxy("openai", coding, whole=True)
    body = gzip.compress(plain.chunks[0]) if coding == "gzip" else zlib.compress(plain.chunks[0])
    routed = await route("openai", servers, tmp_path, Fault.raw(200, body, headers=dict(plain.headers)))
    assert outcomes(routed) == OK and routed.response.text == "Sunny."


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama"])
async def test_guard_a_stream_that_opens_compressed_and_breaks_is_malformed(servers: dict[str, Any],  # noqa: F811
                                                                            tmp_path: Path, kind: str,
                                                                            coding: str) -> None:
    """Guard (held already; the gzip case is round 3's, without its content-length): a body that opens as a gzip
    member or a zlib stream and does not decode after it — the fallback reads only bodies that open as text — is
    malformed_response, never read as text."""
    whole = (gzip.compress if coding == "gzip" else zlib.compress)(b"data: x\n\n" * 200)
    broken = whole[:30 if coding == "gzip" else 12] + b"\x00" * 40
    routed = await route(kind, servers, tmp_path, Fault.raw(200, broken, headers={**SSE, "content-encoding": coding}))
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]
    assert f"{coding} encoding does not decode" in (routed.record.attempts[0].detail or "")


class _Pieces:
    def __init__(self, *pieces: bytes):
        self.pieces = list(pieces)

    async def readany(self) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


async def test_guard_a_bomb_is_handed_over_a_bounded_piece_at_a_time() -> None:
    """Guard (aiohttp bounded its decompression too): 64 MB of zeros gzipped to ~64 KB come out at most 64 KB a
    read, so the line limit downstream fails it before it fills the memory."""
    bomb = gzip.compress(b"\0" * 2**26)
    reader = Decoding(_Pieces(bomb), "gzip")
    sizes = [len(await reader.readany()) for _ in range(3)]
    assert sizes == [2**16] * 3
