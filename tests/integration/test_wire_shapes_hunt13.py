"""Provider wire shapes that still lost information (providers28), each rebuilt from the server's source or the report
where it was met (cited per test), replayed through the router.

- Ollama's OpenAI-compatible endpoint on its own failure mid-answer: the error object its handler writes goes through
  the ``/v1`` writer, which turns it into an empty chunk (``"model": ""``), and the stream closes without ``[DONE]``.
  Read as a dropped connection; now the server's error;
- a usage chunk sent after ``data: [DONE]``: the tokens were estimated; now read, in the read that brought ``[DONE]``
  or in one that follows within a short bound;
- a JSON answer cut right after an inner ``}`` or ``]`` and ended cleanly: malformed_response (never asked again);
  now a dropped connection, asked again;
- an answer really compressed with br or zstd (a relay passing on its upstream's bytes): malformed_response, no
  decoder; now decoded — and what modelyard asks for stays ``gzip, deflate`` whatever decoders are installed.

Each failed on the code before this work, but the guards (named so), which held already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import brotli
import pytest
from backports import zstd
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, SSE, chunk, data
from tests.integration.test_wire_shapes_round3 import outcomes, route

from modelyard.providers.coding import Decoding
from modelyard.types import ChatRequest, Message, TextPrompt

# -- Ollama's /v1 stream on its own error ------------------------------------------------------------------------------


def _ollama_chunk(content: str, model: str = "qwen3:8b", role: bool = False) -> str:
    """A chunk as Ollama's ``/v1/chat/completions`` writes it (openai/openai.go ``toChunk``: ``chatcmpl-`` and a
    number below 999, ``system_fingerprint: "fp_ollama"``, the model named on every chunk)."""
    delta: dict[str, Any] = {"role": "assistant", "content": content} if role else {"content": content}
    return data({"id": "chatcmpl-417", "object": "chat.completion.chunk", "created": 1764554400, "model": model,
                 "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def ollama_v1_error_midstream(role: bool) -> Fault:
    """What Ollama's ``/v1/chat/completions`` sends when its model fails mid-answer. server/routes.go
    ``streamResponse``: once the body has begun, ``json.NewEncoder(c.Writer).Encode(gin.H{"error": e})`` (docs/api/
    errors.mdx shows it on ``/api``: ``{"error":"an error was encountered while running the model"}``), then the
    handler returns. Under ``/v1`` that writer is middleware/openai.go's ``ChatWriter``: its status is 200, so
    ``writeResponse`` unmarshals the error into an ``api.ChatResponse`` (no ``error`` field: dropped) and writes it as
    a chunk — no model, no text, no finish reason — and no ``[DONE]`` (only a ``Done`` response writes it). Since
    ollama#17485 (2026-08) the chunk's delta is ``{"content": ""}``; before, ``ToChunk`` put ``"role": "assistant"``
    in every delta (``role``)."""
    return Fault.raw(200, _ollama_chunk("", role=True), _ollama_chunk("Sun"),
                     _ollama_chunk("", model="", role=role), headers=SSE)


@pytest.mark.parametrize("role", [False, True], ids=["ollama-since-17485", "ollama-before"])
async def test_ollamas_own_error_mid_stream_on_v1_is_a_server_error(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                                     role: bool) -> None:
    """It was read as connection_dropped ("stream ended without [DONE]"): the server's failure logged as the
    network's. The words are not on the wire (Ollama's writer dropped them); the chunk of nothing still says the
    server gave up: server_error, asked again as before, the row naming Ollama and where its words are."""
    routed = await route("openai", servers, tmp_path, ollama_v1_error_midstream(role), ollama_v1_error_midstream(role))
    assert outcomes(routed) == [("primary", "retry", "server_error"), ("primary", "fallback", "server_error"),
                                ("backup", "ok", None)]
    detail = routed.record.attempts[0].detail or ""
    assert "Ollama" in detail and "log" in detail, detail


def _ollama_completion_chunk(text: str, model: str = "qwen2.5-coder:1.5b") -> str:
    """A chunk of Ollama's ``/v1/completions`` (openai/openai.go ``ToCompleteChunk``: ``cmpl-`` and a number,
    ``text_completion``, ``fp_ollama``)."""
    return data({"id": "cmpl-52", "object": "text_completion", "created": 1764554400, "model": model,
                 "system_fingerprint": "fp_ollama", "choices": [{"text": text, "index": 0, "finish_reason": None}]})


async def test_ollamas_own_error_mid_text_completion_on_v1_is_a_server_error(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """The same on Ollama's legacy ``/v1/completions`` (fill-in-the-middle and raw prompts): its ``CompleteWriter``
    decodes the error into an ``api.GenerateResponse`` the same way, a chunk of no text and no model, then the close.
    It was connection_dropped; now server_error, naming Ollama."""
    fault = Fault.raw(200, _ollama_completion_chunk("Once"), _ollama_completion_chunk("", model=""), headers=SSE)
    servers["openai"].push(fault)
    servers["openai"].push(fault)
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    try:
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Once")],
                                                            prompt=TextPrompt("Once")))
    finally:
        await router.aclose()
        writer.close()
    assert outcomes(routed)[:2] == [("primary", "retry", "server_error"), ("primary", "fallback", "server_error")]
    assert "Ollama" in (routed.record.attempts[0].detail or "")


async def test_guard_an_empty_chunk_then_a_close_elsewhere_is_a_dropped_connection(servers: dict[str, Any],  # noqa: F811
                                                                                  tmp_path: Path) -> None:
    """Guard (held already): the same chunk of nothing from a server that is not Ollama (no ``fp_ollama``), then a
    clean close, stays a dropped connection — only Ollama's writer is known to stand an empty chunk for an error."""
    cut = Fault.raw(200, chunk({"content": "Sun"}), chunk({"content": ""}, model=""), headers=SSE)
    routed = await route("openai", servers, tmp_path, cut, cut)
    assert outcomes(routed)[0] == ("primary", "retry", "connection_dropped")


# -- usage after [DONE] ------------------------------------------------------------------------------------------------

USAGE = data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local", "choices": [],
              "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48}})


@pytest.mark.parametrize("apart", [False, True], ids=["same-write", "next-write"])
async def test_usage_sent_after_done_is_read(servers: dict[str, Any], tmp_path: Path, apart: bool) -> None:  # noqa: F811
    """OpenAI's reference puts the usage chunk before ``[DONE]``; relays and servers that write it after are met:
    a Go proxy's test "usage after [DONE] was dropped" reads ``[DONE]`` then ``{"choices":[],"usage":{…}}``, and
    agent clients read on past ``[DONE]`` because "some compatible servers emit usage AFTER [DONE]". modelyard stopped
    at ``[DONE]``: the counts estimated (here 5 in, 1 out). Now read — in the write that brought ``[DONE]``, or in the
    next one (``apart``: 10 ms later) — within :data:`modelyard.providers.openai.AFTER_DONE`."""
    tail = (DONE, USAGE) if apart else (DONE + USAGE,)
    fault = Fault.raw(200, chunk({"content": "Sunny."}), chunk({}, "stop"), *tail, headers=SSE,
                      interval=0.01 if apart else 0.0)
    routed = await route("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert (routed.record.tokens_in, routed.record.tokens_out) == (31, 17)


async def test_guard_a_body_held_open_after_done_ends_the_answer(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Guard (held already: it stopped at ``[DONE]``): a server that sends no usage and keeps the body open after
    ``[DONE]`` — the wait for a late usage chunk is bounded, the answer comes, its counts estimated."""
    fault = Fault.raw(200, chunk({"content": "Sunny."}), chunk({}, "stop"), DONE, headers=SSE, end="hang")
    routed = await route("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert routed.record.tokens_out == 1  # one text delta: the estimate


# -- a JSON answer cut right after an inner bracket -------------------------------------------------------------------

WHOLE = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2}})


@pytest.mark.parametrize("end", ['"stop"}', "]"], ids=["after-inner-brace", "after-inner-bracket"])
async def test_a_json_answer_cut_after_an_inner_bracket_is_a_dropped_connection(
        servers: dict[str, Any], tmp_path: Path, end: str) -> None:  # noqa: F811
    """A server that ignores ``stream: true`` answers one JSON document; a proxy or load balancer that closes it
    early at a clean chunk boundary (its own timeout, the upstream reset: the close-delimited bodies RFC 9112 §6.3
    allows) leaves a prefix of it. One that ended on an inner ``}`` or ``]`` was malformed_response — never asked
    again, the model counted broken — where a cut anywhere else was already a dropped connection. Now the same."""
    cut = WHOLE[:WHOLE.index(end) + len(end)]
    assert cut[-1] in "}]" and cut != WHOLE
    routed = await route("openai", servers, tmp_path, Fault.raw(200, cut, headers=JSON))
    assert outcomes(routed)[0] == ("primary", "retry", "connection_dropped"), routed.record.attempts[0].detail
    assert outcomes(routed)[-1][1] == "ok"  # asked again: the fake's own answer


async def test_guard_a_whole_json_answer_whose_text_has_unpaired_brackets_is_read(servers: dict[str, Any],  # noqa: F811
                                                                                 tmp_path: Path) -> None:
    """Guard (held already): a whole document whose text holds brackets that do not pair (code in an answer) is
    parsed to be sure, and read."""
    text = "if (x) { return [1, 2"
    whole = WHOLE.replace('"Sunny."', json.dumps(text))
    routed = await route("openai", servers, tmp_path, Fault.raw(200, whole, headers=JSON))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == text


# -- br and zstd ---------------------------------------------------------------------------------------------------

ANSWER = chunk({"role": "assistant", "content": ""}) + chunk({"content": "Sunny."}) + chunk({}, "stop") + DONE


def _split(body: bytes, pieces: int) -> list[bytes]:
    size = max(1, len(body) // pieces)
    return [body[i:i + size] for i in range(0, len(body), size)]


def _flushed(body: bytes) -> bytes:
    """br as a relay compresses a stream: each event flushed as it goes (brotli's streaming compressor)."""
    compressor = brotli.Compressor()
    return b"".join(compressor.process(line + b"\n\n") + compressor.flush()
                    for line in body.split(b"\n\n") if line) + compressor.finish()


@pytest.mark.parametrize(("coding", "compress"), [
    ("br", brotli.compress), ("br", _flushed), ("br", lambda b: brotli.compress(b, quality=4, lgwin=16)),
    ("zstd", zstd.compress), ("zstd", lambda b: zstd.compress(b[:40]) + zstd.compress(b[40:]))],
    ids=["br", "br-flushed-per-event", "br-window-16", "zstd", "zstd-two-frames"])
async def test_a_stream_really_compressed_with_br_or_zstd_is_read(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                                 coding: str, compress: Any) -> None:
    """A relay that passes on its upstream's bytes under the upstream's ``content-encoding`` whatever its own client
    was offered (the class of superlocalmemory#79 and freelens-ai-extension#272, compressed for real), or aiohttp
    itself offering br wherever Brotli was installed: the body could not be read (no decoder), malformed_response.
    Now decoded (RFC 7932, RFC 8878), in pieces as a network delivers them — br's first byte is often a text byte
    (``[`` at the default window), zstd's may come in frames one after another."""
    body = compress(ANSWER.encode())
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, *_split(body, 4), headers={**SSE, "content-encoding": coding}))
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text == "Sunny."


async def test_a_br_body_that_opens_with_a_text_byte_is_decoded() -> None:
    """br has no magic number; its first byte carries the window's size and, for a body whose first block is not its
    last (over 64 KB here), a text byte: ``[`` at the default window and qualities 2–11. The reader chose by the first
    byte — text is read as it is — so such a body came out as its compressed bytes. Now the bytes are tried as br:
    text fails within a few bytes, br gives out the answer. (Past the router's 20 KB bound here: read directly.)"""
    body = ("".join(chunk({"content": f"Sunny {i}. "}) for i in range(400)) + DONE).encode()
    compressed = brotli.compress(body)
    assert compressed[:1] == b"["
    assert await _decoded(_split(compressed, 50), "br") == body
    for text in (ANSWER.encode(), b"Internal Server Error", b" {}", b"\r\n"):  # labelled br, not compressed
        assert await _decoded(_split(text, 3), "br") == text


async def _decoded(pieces: list[bytes], coding: str) -> bytes:
    class Body:
        async def readany(self) -> bytes:
            return pieces.pop(0) if pieces else b""

    reader, out = Decoding(Body(), coding), b""
    while piece := await reader.readany():
        out += piece
    return out


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_a_whole_answer_compressed_with_br_or_zstd_is_read(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                                coding: str) -> None:
    """The same for a JSON document (a server that ignores ``stream: true``)."""
    body = (brotli.compress if coding == "br" else zstd.compress)(WHOLE.encode())
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, body, headers={**JSON, "content-encoding": coding}))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_guard_a_br_or_zstd_body_cut_short_is_malformed(servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                             coding: str) -> None:
    """Guard (held already, as no body of these codings was read): one whose compressed stream ends short of its end
    does not decode — malformed_response, never read as text."""
    body = (brotli.compress if coding == "br" else zstd.compress)((ANSWER * 40).encode())
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, body[:len(body) // 2], headers={**SSE, "content-encoding": coding}))
    assert outcomes(routed)[0] == ("primary", "fallback", "malformed_response")


async def test_what_modelyard_asks_for_stays_gzip_and_deflate(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """aiohttp offers br and zstd on its own wherever Brotli and a zstd module are installed (its
    ``_gen_default_accept_encoding``): with them installed, servers behind a CDN would answer in codings modelyard
    read only since now. What is asked stays what was tested, ``gzip, deflate``."""
    routed = await route("openai", servers, tmp_path)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert servers["openai"].last_request.headers["accept-encoding"] == "gzip, deflate"
