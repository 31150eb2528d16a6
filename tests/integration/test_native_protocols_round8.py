"""An eighth outside-in pass (hunt8): what the seven before left, and shapes no fake had sent. Each is the server's own,
taken from its source or an issue thread where its users met it (cited per test), replayed verbatim (``Fault.raw``)
or sent by the fakes (tests/fakes/openai_compat.py's ``refusal``).

- llama-server's "Context size has been exceeded." (mid-stream in both of its framings, and as a 500);
- llama-server's 503 "Loading model", which gives no estimate;
- llama-server started with ``--embeddings``, asked for a chat;
- Structured Outputs' refusal (``delta.refusal`` / ``message.refusal``, content null);
- an Anthropic stream into which a proxy spliced a second message (its retry upstream).

Each failed on the code before this pass; the guards at the end held already.
"""

from __future__ import annotations

import asyncio
import json
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.fakes import Fault, OpenAIServer
from tests.helpers import make_config
from tests.integration.test_fault_shapes import KEY, _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import (
    ANTHROPIC_TEXT,
    DONE,
    JSON,
    MESSAGE_DELTA,
    NDJSON,
    SSE,
    chunk,
    event,
)
from tests.integration.test_wire_shapes_round3 import outcomes, route_cooling
from tests.integration.test_wire_shapes_round4 import _Endpoint, _requests

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

#: llama.cpp's error object for it (server-context.cpp: ``send_error(slot, "Context size has been exceeded.")``,
#: ERROR_TYPE_SERVER, so code 500 and type server_error)
CONTEXT_FULL = {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}
MESSAGE_STOP = event("message_stop", {"type": "message_stop"})


def _start(message_id: str) -> str:
    return event("message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
        "stop_reason": None, "usage": {"input_tokens": 9, "output_tokens": 1}}})


def _text_block(text: str) -> str:
    return (event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
            + event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": text}}))


# -- llama-server: the context filled up ------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    # since llama.cpp#16109 (Sept 2025) a mid-stream error is a data event holding {"error": …}
    Fault.raw(200, chunk({"content": "Sun"}), "data: " + json.dumps({"error": CONTEXT_FULL}) + "\n\n", headers=SSE),
    # before it, an "error:" field of its own
    Fault.raw(200, chunk({"content": "Sun"}), "error: " + json.dumps(CONTEXT_FULL) + "\n\n", headers=SSE),
    # a request that is not streamed gets it as the status (users quote "HTTP 500 … Context size has been exceeded.")
    Fault.raw(500, json.dumps({"error": CONTEXT_FULL}), headers=JSON),
], ids=["data_event", "error_field", "status_500"])
async def test_llama_server_context_size_exceeded_goes_to_the_next_model(fault: Fault,
                                                                         servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """llama-server ends a generation whose prompt and answer outgrow the slot's context with "Context size has been
    exceeded." (server-context.cpp: llama_decode found no room for one more token; LM Studio's llama.cpp engine says
    the same, "Engine protocol predict stream returned an error: {code:500, message:'Context size has been
    exceeded'}"). It was a stream_error (a server_error as a 500): asked again at once, the same prompt, refused
    again, and counted against a model that is well. Now as the other context refusals: the next model at once, this
    one not marked sick."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "Context size has been exceeded" in (routed.record.attempts[0].detail or "") and cooling == 0


async def test_llama_server_context_size_exceeded_counts_nothing_against_the_model(servers: dict[str, Any],  # noqa
                                                                                  tmp_path: Path) -> None:
    """Five such refusals in a row (cooldown.failures is 5 here) leave the model in service: the sixth request is
    asked of it and answered."""
    for _ in range(5):
        servers["openai"].push(Fault.raw(200, "data: " + json.dumps({"error": CONTEXT_FULL}) + "\n\n", headers=SSE))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = [await router.complete("agent", ChatRequest(messages=[Message("user", "hi")])) for _ in range(6)]
    await router.aclose()
    writer.close()
    assert [outcomes(r)[0][1:] for r in routed[:5]] == [("fallback", "bad_request")] * 5
    assert outcomes(routed[5]) == [("primary", "ok", None)]
    assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 6


# -- llama-server: still loading its model ----------------------------------------------------------------------------

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


async def test_llama_server_loading_model_rests_instead_of_being_asked_again(servers: dict[str, Any],  # noqa: F811
                                                                            tmp_path: Path) -> None:
    """llama-server answers every request with 503 ``{"error":{"code":503,"message":"Loading model","type":
    "unavailable_error"}}`` while its weights load (server.cpp's middleware), with no ``retry-after`` and no estimate.
    It was asked again at once (refused), and on every request of the load, counted until its breaker opened. Now it
    rests a few seconds, as for a loading model's ``estimated_time``: the next model answers at once."""
    loading = Fault.raw(503, json.dumps(LOADING), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, loading, loading)
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    assert 4 < cooling <= 5
    assert len(servers["openai"].requests) == 1


# -- llama-server started with --embeddings ---------------------------------------------------------------------------

async def test_llama_server_started_for_embeddings_is_a_model_that_cannot_chat(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """llama-server started with ``--embeddings`` refuses a chat: 501 ``{"error":{"code":501,"message":"This server
    does not support completions. Start it without `--embeddings`","type":"not_supported_error"}}`` (server.cpp,
    handle_completions_impl; format_error_response gives ERROR_TYPE_NOT_SUPPORTED code 501). It was a server_error:
    asked again at once and counted until the breaker opened for seconds, then again, as long as the server ran so.
    Now as Ollama's embedding model named in a chain: model_missing, not asked a chat again — and not cooled, for the
    embeddings it serves (tests/gateway/test_embeddings_rag.py)."""
    said = "This server does not support completions. Start it without `--embeddings`"
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        501, json.dumps({"error": {"code": 501, "message": said, "type": "not_supported_error"}}), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    assert "--embeddings" in (routed.record.attempts[0].detail or "") and cooling == 0


# -- Structured Outputs' refusal --------------------------------------------------------------------------------------

REFUSAL = "I'm sorry, I can't help with that."


@pytest.fixture
def refusing() -> Any:
    with OpenAIServer(models=["local"], refusal=REFUSAL) as refuser, \
            OpenAIServer(models=["backup"], reply_text="backup answer") as backup:
        yield refuser, backup


async def test_a_refusal_is_passed_on_as_the_models_answer(refusing: tuple[OpenAIServer, OpenAIServer],
                                                          tmp_path: Path) -> None:
    """OpenAI's models decline in ``refusal``, ``content`` null (the API reference's ChatCompletionChunk
    ``delta.refusal``; openai-agents-python#589 reads it, MacPaw/OpenAI#249). It was read as nothing: an empty stop,
    refused as unusable, and the next model asked. It is a policy answer, passed on as Anthropic's refusal is (stop
    reason ``refusal``; the gateway says ``content_filter``)."""
    refuser, backup = refusing
    config = make_config(
        {"primary": {"provider": "openai", "model": "local", "endpoint": refuser.url},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}})
    writer = LogWriter(tmp_path / "log.db", local_models=["primary", "backup"])
    router = Router(config, sink=writer.submit)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Do something bad")]))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    assert (routed.response.text, routed.response.stop_reason) == (REFUSAL, "refusal")
    assert not backup.requests


async def test_a_whole_answers_refusal_is_read_too(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    whole = {"id": "chatcmpl-1", "object": "chat.completion", "model": "local", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": None, "refusal": REFUSAL}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}}
    routed, _ = await route_cooling("openai", servers, tmp_path, Fault.raw(200, json.dumps(whole), headers=JSON))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert (routed.response.text, routed.response.stop_reason) == (REFUSAL, "refusal")


def test_the_official_client_reads_the_fakes_refusal(refusing: tuple[OpenAIServer, OpenAIServer]) -> None:
    """The fake's refusal is what the ``openai`` package reads as one, streamed and whole."""
    refuser, _ = refusing
    client = openai.OpenAI(base_url=refuser.url + "/v1", api_key="sk-none", max_retries=0)
    ask: Any = [{"role": "user", "content": "Do something bad"}]
    whole = client.chat.completions.create(model="local", messages=ask)
    assert (whole.choices[0].message.content, whole.choices[0].message.refusal) == (None, REFUSAL)
    pieces = [c.choices[0].delta for c in client.chat.completions.create(model="local", messages=ask, stream=True)
              if c.choices]
    assert "".join(d.refusal or "" for d in pieces) == REFUSAL and not any(d.content for d in pieces)


# -- Anthropic: a second message spliced into the stream --------------------------------------------------------------

async def test_a_second_message_spliced_into_the_stream_is_not_joined_to_the_first(servers: dict[str, Any],  # noqa
                                                                                   tmp_path: Path) -> None:
    """A proxy that loses its upstream mid-answer and retries can splice the retry's events into the same body: a
    second ``message_start`` with a new id while the first message is open (seen behind Google Vertex, vercel/ai#18331:
    the first answer's tool_use cut mid input_json_delta). The two were read as one answer: "The weather inSunny.",
    passed on as good. Now the first is an answer cut short, as by a broken connection: asked again."""
    routed, _ = await route_cooling("anthropic", servers, tmp_path, Fault.raw(
        200, _start("msg_1"), _text_block("The weather in"), _start("msg_2"), _text_block("Sunny."),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}), MESSAGE_DELTA, MESSAGE_STOP,
        headers=SSE))
    assert outcomes(routed) == [("primary", "retry", "connection_dropped"), ("primary", "ok", None)]
    assert "second message" in (routed.record.attempts[0].detail or "")
    assert "The weather in" not in routed.response.text


async def test_a_message_start_sent_twice_is_read_once(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Guards the above: gateways that send the same ``message_start`` twice (bifrost#4556, litellm#32479) are read
    as the one message they are."""
    routed, _ = await route_cooling("anthropic", servers, tmp_path, Fault.raw(
        200, _start("msg_1"), _start("msg_1"), _text_block("Sunny."),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}), MESSAGE_DELTA, MESSAGE_STOP,
        headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert routed.record.tokens_in == 9


# -- held already (guards) --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "fault"), [
    ("openai", Fault.raw(200, b'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3',
                         b'\xa9"},"finish_reason":"stop"}]}\n\n', DONE, headers=SSE, interval=0.05)),
    ("ollama", Fault.raw(200, b'{"message":{"role":"assistant","content":"caf\xc3',
                         b'\xa9"},"done":false}\n{"done":true,"done_reason":"stop"}\n', headers=NDJSON, interval=0.05)),
], ids=["sse", "ndjson"])
async def test_a_character_split_between_two_reads_is_whole(kind: str, fault: Fault, servers: dict[str, Any],  # noqa
                                                            tmp_path: Path) -> None:
    """A UTF-8 character whose bytes straddle two TCP reads (any server's large answer; a proxy re-chunking) is
    joined, not replaced."""
    routed, _ = await route_cooling(kind, servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "café"


async def test_retry_after_as_an_http_date_cools_until_then(servers: dict[str, Any],  # noqa: F811
                                                           tmp_path: Path) -> None:
    """RFC 9110 allows ``Retry-After`` as an HTTP date (proxies and CDNs send it so); the model cools until then."""
    until = formatdate(time.time() + 4, usegmt=True)
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        429, json.dumps({"error": {"message": "slow down", "type": "requests"}}),
        headers={**JSON, "retry-after": until}))
    assert outcomes(routed) == [("primary", "fallback", "rate_limited"), ("backup", "ok", None)]
    assert 2 < cooling <= 4


async def test_anthropic_crlf_and_pings_between_every_event(servers: dict[str, Any],  # noqa: F811
                                                            tmp_path: Path) -> None:
    """Anthropic documents ``event: ping`` anywhere in a stream; a Windows-hosted proxy ends lines with CRLF."""
    body = (ANTHROPIC_TEXT + event("ping", {"type": "ping"}) + MESSAGE_DELTA + MESSAGE_STOP).replace("\n", "\r\n")
    routed, _ = await route_cooling("anthropic", servers, tmp_path, Fault.raw(200, body, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."


# -- llama_cpp.server: an empty stream for a prompt past its context --------------------------------------------------

async def test_an_empty_stream_the_server_has_explained_is_not_asked_again(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """llama_cpp.server answers a streamed prompt past its context with a 200 event stream framed empty (its error is
    raised inside the stream; the fifth hunt asks such a stream once more whole, where the server says why). That
    second request was paid on every over-context prompt. Once the server has said so, its empty stream is that
    refusal at once: the next model answers, one request to this server per prompt."""
    over = json.dumps({"error": {"message": "This model's maximum context length is 256 tokens. However, you "
                                            "requested 437 tokens (429 in the messages, 8 in the completion). Please "
                                            "reduce the length of the messages or completion.",
                                 "type": "invalid_request_error", "param": "messages",
                                 "code": "context_length_exceeded"}})
    for _ in range(2):  # each prompt: the empty stream, and the refusal were it asked whole
        servers["openai"].push(Fault.raw(200, headers=SSE))
        servers["openai"].push(Fault.raw(400, over, headers=JSON))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = [await router.complete("agent", ChatRequest(messages=[Message("user", "a long prompt")]))
              for _ in range(2)]
    await router.aclose()
    writer.close()
    for each in routed:
        assert outcomes(each) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "maximum context length is 256 tokens" in (routed[1].record.attempts[0].detail or "")
    assert "437" not in (routed[1].record.attempts[0].detail or "")
    sent = [r.json.get("stream") for r in servers["openai"].requests if r.path.endswith("/chat/completions")]
    assert sent == [True, False, True]
    assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2


# -- a proxy that sends Content-Length beside Transfer-Encoding: chunked ----------------------------------------------

def _chunked_with_length(events: list[bytes]) -> Any:
    """A server whose streamed answers carry ``content-length`` beside ``transfer-encoding: chunked`` (the length of
    nothing in particular), each event one chunk."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                         b"content-length: 1234\r\n\r\n")
            for piece in events:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()
    return handle


async def test_content_length_beside_chunked_is_read_as_chunked(servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """An Azure OpenAI proxy built on FastAPI (powerproxy-aoai#53) sent its streamed answers with both
    ``content-length`` and ``transfer-encoding: chunked``. RFC 9112 §6.3 says the chunked framing wins (h11, and so the
    official ``openai`` client, reads it so); aiohttp refuses the pair ("Content-Length can't be present with
    Transfer-Encoding", aiohttp#6182): every answer through such a proxy was a malformed_response, the model never
    used. Now the first is asked once more and read with the length dropped, and the server's later answers so."""
    events = [chunk({"role": "assistant", "content": "Sunny."}).encode(), chunk({}, "stop").encode(), DONE.encode()]
    server = await asyncio.start_server(_chunked_with_length(events), "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        router, writer = router_for("openai", {**servers, "openai": _Endpoint(endpoint)}, tmp_path / "log.db")
        for _ in range(2):
            routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Weather?")]))
            assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
        await router.aclose()
        writer.close()


        def read_with_the_official_client() -> str:  # in a thread: the server runs on this loop
            stream = openai.OpenAI(base_url=endpoint + "/v1", api_key="sk-none", max_retries=0,
                                   timeout=10).chat.completions.create(
                model="local", messages=[{"role": "user", "content": "Weather?"}], stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        assert await asyncio.to_thread(read_with_the_official_client) == "Sunny."
    finally:
        server.close()


# -- llama-server: a tool call it could not parse, arguments in the history that are no JSON --------------------------

#: the model's text as llama-server quotes it after the position (GLM-4.7's XML tool call, pwilkin/llama.cpp#5)
BROKEN = ("Failed to parse input at pos 184: <tool_call>bash\n<arg_key>command</arg_key>\n<arg_value>ls -la "
          "/home/secret-project</arg_value>")


@pytest.mark.parametrize("fault", [
    Fault.raw(500, json.dumps({"error": {"code": 500, "message": BROKEN, "type": "server_error"}}), headers=JSON),
    Fault.raw(200, chunk({"content": "Let me look."}),
              "data: " + json.dumps({"error": {"code": 500, "message": BROKEN, "type": "server_error"}}) + "\n\n",
              headers=SSE),
], ids=["status_500", "data_event"])
async def test_a_tool_call_llama_server_could_not_parse_is_an_unusable_answer(fault: Fault,
                                                                             servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """llama-server with ``--jinja`` parses the model's output in its chat format; a tool call the model began and
    broke fails as 500 "Failed to parse input at pos 184: …" (pwilkin/llama.cpp#5 for GLM-4.7; ggml-org/llama.cpp
    #20532 for gpt-oss; QwenPaw#3560 saw it as the openai SDK's ``APIError: Failed to parse input``), streamed or
    not. It was a server_error: asked again, counted against the model, the model's own text in the row. Now an
    unusable answer, as a tool call written as text is: the next model at once, the model's text left out."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)]
    detail = routed.record.attempts[0].detail or ""
    assert "Failed to parse input at pos 184" in detail and "secret-project" not in detail and cooling == 0


async def test_tool_arguments_in_the_history_that_are_no_json_go_to_the_next_model(servers: dict[str, Any],  # noqa
                                                                                  tmp_path: Path) -> None:
    """A call in the conversation whose arguments are not JSON (another model's broken call, kept as it came):
    llama-server answers 500 "Failed to parse tool call arguments as JSON" (common/chat.cpp; ggml-org/llama.cpp#25510:
    "Repeating the malformed history repeats the 500"). It was a server_error, asked again for the same refusal and
    counted against the model. Now the request's: the next model at once, this one not marked sick."""
    said = "Failed to parse tool call arguments as JSON: [json.exception.parse_error.101] parse error at line 1"
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        500, json.dumps({"error": {"code": 500, "message": said, "type": "server_error"}}), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)] and cooling == 0


# -- Ollama: a tool call it could not parse ---------------------------------------------------------------------------

#: Ollama's harmony parser (server/harmonyparser.go) quotes the model's whole text; gpt-oss's array-wrapped arguments
#: (ollama#17638)
HARMONY = ("error parsing tool call: raw='{\"cmd\":\"apply_patch <<'PATCH' *** Begin Patch secret-token-123 "
           "PATCH\"]}', err=invalid character ']' after object key:value pair")


@pytest.mark.parametrize(("kind", "fault"), [
    ("ollama", Fault.raw(500, json.dumps({"error": HARMONY}), headers=JSON)),
    ("ollama", Fault.raw(200, json.dumps({"model": "qwen3.5:latest", "done": False, "message": {
        "role": "assistant", "content": "Patching."}}) + "\n" + json.dumps({"error": HARMONY}) + "\n", headers=NDJSON)),
    ("ollama", Fault.raw(500, json.dumps({"error": "XML syntax error on line 35: element <parameter> closed by "
                                                   "</function>"}), headers=JSON)),
    # through Ollama's /v1: middleware/openai.go wraps the same words as an api_error
    ("openai", Fault.raw(500, json.dumps({"error": {"message": HARMONY, "type": "api_error", "param": None,
                                                    "code": None}}), headers=JSON)),
], ids=["harmony_500", "harmony_midstream", "xml_500", "v1_500"])
async def test_a_tool_call_ollama_could_not_parse_is_an_unusable_answer(kind: str, fault: Fault,
                                                                       servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Ollama parses the model's output for tool calls and answers 500 when it cannot (its harmony parser: "error
    parsing tool call: raw='…', err=invalid character ']' …" — gpt-oss, ollama#17638, "~5% of tool calls" in one
    user's agent log; its XML tool parsers: Go's "XML syntax error on line 35: element <parameter> closed by
    </function>"), or sends it as an error line after the 200. It was a server_error / stream_error: asked again,
    counted against the model, the model's raw text (here a token) in the row. Now an unusable answer: the next model
    at once, the row keeping only the parser's error."""
    routed, cooling = await route_cooling(kind, servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)] and cooling == 0
    detail = routed.record.attempts[0].detail or ""
    assert "could not parse the model's tool call" in detail and "secret-token" not in detail


# -- Anthropic: the first words in content_block_start ----------------------------------------------------------------

def _first_words_in_the_start() -> Fault:
    return Fault.raw(
        200, _start("msg_1"),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "thinking", "thinking": "Look", "signature": ""}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "thinking_delta", "thinking": "ing outside."}}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("content_block_start", {"type": "content_block_start", "index": 1,
                                      "content_block": {"type": "text", "text": "Sun"}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 1,
                                      "delta": {"type": "text_delta", "text": "ny."}}),
        event("content_block_stop", {"type": "content_block_stop", "index": 1}), MESSAGE_DELTA, MESSAGE_STOP,
        headers=SSE)


async def test_the_first_words_of_a_block_in_its_start_are_kept(servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """``content_block_start`` carries the block itself (``{"type": "text", "text": ""}`` as documented); the
    official SDKs keep it as the snapshot the deltas are added to (anthropic-python's accumulate_event), so an
    adapter that puts the first piece there (thinking: oh-my-pi#8319) loses nothing with them. modelyard dropped it:
    "ny." passed on as the answer. Now the start's text and thinking come first."""
    routed, _ = await route_cooling("anthropic", servers, tmp_path, _first_words_in_the_start())
    assert outcomes(routed) == [("primary", "ok", None)]
    assert (routed.response.text, routed.response.thinking) == ("Sunny.", "Looking outside.")


def test_the_official_client_reads_the_first_words_in_the_start_too(servers: dict[str, Any]) -> None:  # noqa: F811
    servers["anthropic"].push(_first_words_in_the_start())
    client = anthropic.Anthropic(base_url=servers["anthropic"].url, api_key=KEY, max_retries=0)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64,
                                messages=[{"role": "user", "content": "Weather?"}]) as stream:
        final = stream.get_final_message()
    assert [getattr(b, "text", None) or getattr(b, "thinking", None) for b in final.content] == [
        "Looking outside.", "Sunny."]


# -- Gemini's malformed function call ---------------------------------------------------------------------------------

@pytest.mark.parametrize("finish", ["MALFORMED_FUNCTION_CALL", "malformed_function_call"])
async def test_a_malformed_function_call_is_an_unusable_answer(finish: str, servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """Gemini ends a turn whose tool call it could not form with ``MALFORMED_FUNCTION_CALL`` (frequent with Gemini
    2.5 and 3: python-genai#1836, gemini-cli#12674, pydantic-ai#3095, inspect_ai#2990); its OpenAI-compatible gateways
    pass Gemini's finish reasons on in capitals (qwen-code#9884), some lower-cased. The text said before it was passed
    on as the whole answer: the call lost, the agent told the turn was done (hermes-agent#83886). Now an unusable
    answer, as a tool call written as text: the next model at once, this one not marked sick."""
    routed, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        200, chunk({"role": "assistant", "content": "Let me check the weather."}), chunk({}, finish), DONE,
        headers=SSE))
    assert outcomes(routed) == [("primary", "fallback", "unusable_reply"), ("backup", "ok", None)] and cooling == 0


# -- an error object not wrapped in {"error": …} ----------------------------------------------------------------------

#: FastChat's worker failure as its OpenAI-compatible server streams it (openai_api_server.py,
#: chat_completion_stream_generator: ``yield f"data: {json.dumps(content)}"`` when ``content["error_code"] != 0``)
FASTCHAT_OOM = {"text": "**NETWORK ERROR DUE TO HIGH TRAFFIC. PLEASE REGENERATE OR REFRESH THIS PAGE.**\n\n"
                        "(CUDA out of memory. Tried to allocate 20.00 MiB)", "error_code": 50002}
#: an OpenAI-compatible ErrorResponse dumped without the {"error": …} wrapper
BARE_LIMIT = {"object": "error", "message": "Rate limit reached", "type": "RateLimitError", "param": None, "code": 429}


@pytest.mark.parametrize(("error", "reason"), [(FASTCHAT_OOM, "stream_error"), (BARE_LIMIT, "rate_limited")],
                         ids=["fastchat_error_code", "bare_error_response"])
async def test_an_error_object_sent_bare_mid_stream_is_an_error(error: dict[str, Any], reason: str,
                                                                servers: dict[str, Any],  # noqa: F811
                                                                tmp_path: Path) -> None:
    """FastChat's OpenAI-compatible server streams its worker's failure as the object it is, ``{"text": …,
    "error_code": 50002}``, then ``[DONE]``; an ErrorResponse may come bare too (``"object": "error"``). With no
    ``error`` and no ``choices`` it was read as a usage-only event and skipped: "Sun" passed on as the whole answer.
    Now the server's error, read for its words and code."""
    routed, _ = await route_cooling("openai", servers, tmp_path, Fault.raw(
        200, chunk({"content": "Sun"}), "data: " + json.dumps(error) + "\n\n", DONE, headers=SSE))
    first = routed.record.attempts[0]
    assert (first.model, first.reason) == ("primary", reason) and first.outcome in ("retry", "fallback")
    assert routed.response.text != "Sun"
