"""Request shapes real clients send to the gateway (the inbound hunt, RELIABILITY.md): each gets an answer
or a clear 4xx in the API's own error shape."""

from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest
from backports import zstd

BODY = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}


def _raw_post(port: int, path: str, body: bytes) -> bytes:
    """One POST exactly as written (httpx would normalise the path)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (path.encode(), len(body), body))
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("path", ["//v1/chat/completions", "/v1/chat/completions/", "/v1//chat/completions",
                                  "/v1/v1/chat/completions"])
def test_a_path_spelled_with_extra_slashes_is_the_endpoint(gateway, path):
    """A base URL ending in '/' joined with '/v1/…' (Starlette read '//v1' as a host and said 'no endpoint
    POST /chat/completions'), or a trailing '/' (a 307 the SDKs do not follow for a POST)."""
    answer = _raw_post(gateway.port, path, json.dumps(BODY).encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"Hello from fast." in answer


def test_a_base_url_without_v1_reaches_the_openai_endpoints(gateway):
    """Continue's `apiBase`, and clients used to LiteLLM's proxy (which serves both), leave out '/v1'."""
    client = openai.OpenAI(base_url=gateway.url, api_key="x", max_retries=0, timeout=15)
    assert client.chat.completions.create(**BODY).choices[0].message.content == "Hello from fast."
    assert "coder" in [m.id for m in client.models.list().data]
    assert client.responses.create(model="coder", input="hi").output_text == "Hello from fast."


def test_an_unserved_path_still_names_itself_in_the_404(gateway):
    r = httpx.post(gateway.url + "/v1/audio/speech", json={"model": "coder", "input": "hi"}, timeout=15)
    assert r.status_code == 404 and "no endpoint POST /v1/audio/speech" in r.json()["error"]["message"]
    r = httpx.get(gateway.url + "/api/pull", timeout=15)
    assert r.status_code == 404 and "/api/pull" in r.json()["error"]


TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in ("f", "g")]
CALL_BACK = {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}


def test_tool_arguments_sent_back_as_an_object_are_read(gateway, fakes):
    """Clients carrying Ollama's habit send `arguments` as the object, not its JSON string (was a 400)."""
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15, json={**BODY, "messages": [
        *BODY["messages"], CALL_BACK, {"role": "tool", "tool_call_id": "c1", "content": "42"}]})
    assert r.status_code == 200, r.text
    sent = [m for m in fakes[0].requests[-1].json["messages"] if m.get("tool_calls")]
    assert json.loads(sent[0]["tool_calls"][0]["function"]["arguments"]) == {"x": 1}


def test_a_named_tool_choice_offers_only_that_tool(gateway, fakes):
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,
                   json={**BODY, "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "g"}}})
    assert r.status_code == 200, r.text
    assert [t["function"]["name"] for t in fakes[0].requests[-1].json["tools"]] == ["g"]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {**BODY, "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "h"}}}),
    ("/v1/chat/completions", {**BODY, "tool_choice": "required"}),
    ("/v1/chat/completions", {**BODY, "tool_choice": {"type": "function", "function": {"name": "h"}}}),
    ("/v1/responses", {"model": "coder", "input": "hi", "tool_choice": "required"}),
    ("/v1/responses", {"model": "coder", "input": "hi", "tools": [{"type": "function", "name": "f"}],
                       "tool_choice": {"type": "function", "name": "h"}}),
    ("/v1/messages", {"model": "coder", "max_tokens": 9, "messages": BODY["messages"], "tool_choice": {"type": "any"}}),
    ("/v1/messages", {"model": "coder", "max_tokens": 9, "messages": BODY["messages"], "tool_choice": {
        "type": "tool", "name": "h"}, "tools": [{"name": "f", "input_schema": {"type": "object"}}]}),
])
def test_a_demanded_call_that_cannot_be_made_is_a_400_not_a_text_answer(gateway, path, body):
    """OpenAI refuses these; the gateway answered them with text, to a client that demanded a call."""
    r = httpx.post(gateway.url + path, json=body, timeout=15)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "tool_choice" and "tool" in error["message"]


def test_the_deprecated_functions_field_is_refused_not_ignored(gateway):
    """`functions`/`function_call` (pre-2023 clients) were dropped: the model answered in text."""
    r = httpx.post(gateway.url + "/v1/chat/completions", timeout=15,
                   json={**BODY, "functions": [{"name": "f", "parameters": {}}], "function_call": "auto"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "functions"
    assert "tools" in r.json()["error"]["message"]


def _post(gateway, path: str, body: bytes, encoding: str) -> httpx.Response:
    return httpx.post(gateway.url + path, content=body, timeout=15,
                      headers={"content-type": "application/json", "content-encoding": encoding})


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_a_compressed_body_is_read(gateway, encoding):
    """Codex compresses large /v1/responses bodies with zstd (new-api#4913, axonhub#1680); read as JSON
    they were a 400 'not a JSON object (expected value at line 1 column 1)'."""
    import gzip
    import zlib

    raw = json.dumps({"model": "coder", "input": "hi"}).encode()
    pack = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding)
    packed = pack(raw) if pack else zstd.compress(raw)
    r = _post(gateway, "/v1/responses", packed, encoding)
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "Hello from fast."


def test_a_compressed_body_that_cannot_be_read_says_why(gateway):
    import gzip

    raw = gzip.compress(json.dumps(BODY).encode())
    for body, encoding, said in [(raw[:-12], "gzip", "truncated gzip"), (b"\x00garbage", "gzip", "not valid gzip"),
                                 (raw, "br", "'br' is not supported")]:
        r = _post(gateway, "/v1/chat/completions", body, encoding)
        assert r.status_code == 400 and said in r.json()["error"]["message"], r.text


def test_a_compressed_body_unpacking_past_the_limit_is_a_413(gateway):
    import gzip

    bomb = gzip.compress(b"{" + b" " * (gateway.gateway.request_limit + 10))  # a few kB, unpacked past it
    r = _post(gateway, "/v1/chat/completions", bomb, "gzip")
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-8"])
def test_a_body_with_a_byte_order_mark_is_read_in_its_encoding(gateway, fakes, codec):
    """Windows PowerShell 5.1's `Out-File` and `>` write UTF-16LE with a BOM: `curl.exe -d @req.json` sent it
    and got a 400 'not a JSON object (expected value at line 1 column 1)'."""
    text = "\ufeff" + json.dumps({"model": "coder", "messages": [{"role": "user", "content": "café ☕"}]},
                                 ensure_ascii=False)
    r = httpx.post(gateway.url + "/v1/chat/completions", content=text.encode(codec), timeout=15,
                   headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert fakes[0].requests[-1].json["messages"][-1]["content"] == "café ☕"


def test_a_byte_order_mark_over_text_that_is_not_that_encoding_says_so(gateway):
    r = httpx.post(gateway.url + "/v1/chat/completions", content=b"\xff\xfe{\x00\x00\xd8", timeout=15)
    assert r.status_code == 400 and "UTF-16 byte order mark" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {**BODY, "stream": None, "stream_options": {"include_usage": None}}),
    ("/v1/chat/completions", {**BODY, "tools": [{"type": "function", "function": {
        "name": "f", "description": None, "parameters": None}}]}),
    ("/v1/chat/completions", {**BODY, "response_format": {"type": "json_schema", "json_schema": {
        "name": None, "schema": {"type": "object"}, "strict": None}}}),
    ("/v1/chat/completions", {**BODY, "messages": [*BODY["messages"], {"role": "assistant", "content": None,
        "tool_calls": [{"id": None, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}),
    ("/v1/responses", {"model": "coder", "input": "hi", "stream": None}),
    ("/v1/messages", {"model": "coder", "max_tokens": 9, "messages": BODY["messages"], "stream": None}),
])
def test_an_optional_field_sent_as_null_is_its_default(gateway, path, body):
    """Clients that write their unset fields (generated SDKs, `model_dump()` without `exclude_none`) send
    `"stream": null`, `"description": null`: the spec lets them; each was a 400 'Input should be a valid …'."""
    r = httpx.post(gateway.url + path, json=body, timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")  # null streams nothing


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
def test_ollama_stream_null_streams_as_ollama_does(gateway, path):
    """Ollama's `stream` is a pointer: nil is its default, streaming."""
    body = {"model": "coder", "stream": None, "messages": BODY["messages"], "prompt": "hi"}
    r = httpx.post(gateway.url + path, json=body, timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson") and len(r.text.splitlines()) > 1


def test_latin_1_text_is_refused_saying_json_is_utf_8(gateway):
    """Windows PowerShell 5.1's Invoke-RestMethod sends a string body as ISO-8859-1: the 400 said
    'invalid unicode code point at line 1 column 65' and nothing of the encoding."""
    text = json.dumps({"model": "coder", "messages": [{"role": "user", "content": "café"}]}, ensure_ascii=False)
    r = httpx.post(gateway.url + "/v1/chat/completions", content=text.encode("latin-1"), timeout=15)
    assert r.status_code == 400 and "JSON is sent as UTF-8" in r.json()["error"]["message"], r.text


def test_a_base_url_ending_in_v1_given_to_the_anthropic_sdk_reaches_messages(gateway):
    """ANTHROPIC_BASE_URL=http://host/v1 (the SDK adds /v1 itself) asked for /v1/v1/messages: a 404."""
    import anthropic

    client = anthropic.Anthropic(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=15)
    answer = client.messages.create(model="coder", max_tokens=9, messages=[{"role": "user", "content": "hi"}])
    assert answer.content[0].text == "Hello from fast."


@pytest.mark.parametrize(("extra", "thinking"), [
    ({"reasoning": {"effort": "none"}}, False),
    ({"reasoning": {"effort": "high"}}, True),
    ({"reasoning": {"enabled": False}}, False),
    ({"chat_template_kwargs": {"enable_thinking": False}}, False),
    ({"chat_template_kwargs": {"enable_thinking": True}}, True),
    ({"chat_template_kwargs": {"other": 1}}, None),
    ({"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": False}}, True),  # OpenAI's word first
])
def test_thinking_asked_in_other_servers_spellings_is_heard(extra, thinking):
    """OpenRouter's `reasoning` and vLLM's `chat_template_kwargs.enable_thinking` (OpenWhispr, opencode send
    them) were ignored: a client turning thinking off got a model that thought."""
    from modelyard.gateway.wire import parse_body, to_chat_request

    assert to_chat_request(parse_body(json.dumps({**BODY, **extra}).encode())).thinking is thinking


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {**BODY, "model": "coder:latest"}),
    ("/v1/responses", {"model": "coder:latest", "input": "hi"}),
    ("/v1/messages", {"model": "coder:latest", "max_tokens": 9, "messages": BODY["messages"]}),
])
def test_ollamas_latest_tag_pasted_into_an_openai_client_is_ignored_as_on_the_ollama_api(gateway, path, body):
    """`/api/chat` took `coder:latest`; the same name on `/v1/chat/completions` was a 404."""
    r = httpx.post(gateway.url + path, json=body, timeout=15)
    assert r.status_code == 200, r.text
    r = httpx.post(gateway.url + path, json={**body, "model": "nope:latest"}, timeout=15)
    assert r.status_code == 404 and "'nope:latest'" in r.text


@pytest.mark.parametrize(("method", "path", "meant"), [
    ("POST", "/v1/chat/completion", "POST /v1/chat/completions"),
    ("POST", "/v1/embedding", "POST /v1/embeddings"),
    ("GET", "/v1/model", "GET /v1/models"),
])
def test_a_path_one_slip_away_names_the_endpoint_meant(gateway, method, path, meant):
    """The 404 listed all 24 endpoints and left the reader to find the one meant; a path one letter off is named
    first (a client's base URL joined with its own path is where such slips come from: OpenHands/OpenHands#6836,
    BerriAI/litellm#9445)."""
    r = httpx.request(method, gateway.url + path, json={"model": "coder"}, timeout=15)
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith(f"no endpoint {method} {path} (did you mean {meant}?); "), r.text


def test_a_path_nothing_like_a_served_one_is_not_given_a_guess(gateway):
    """Guard (passes on the old code too): Ollama's /api/pull is no slip for /api/show or /api/chat."""
    r = httpx.post(gateway.url + "/api/pull", json={"model": "coder"}, timeout=15)
    assert r.status_code == 404 and "did you mean" not in r.json()["error"]


def test_a_truncated_zstd_body_says_it_is_cut(gateway):
    """A zstd body cut short (a client killed mid-upload behind a proxy that closed the body cleanly; RFC 8878 §3.1.1:
    a frame ends with its last block, flagged Last_Block) was decoded to what its first blocks held — nothing, or
    half a JSON text — and answered 'not a JSON object', as if the client had sent bad JSON: gzip's says 'truncated'."""
    raw = json.dumps({**BODY, "messages": [{"role": "user", "content": "hello " * 2000}]}).encode()
    packed = zstd.compress(raw)
    for cut in (packed[:len(packed) // 2], packed[:-3]):
        r = _post(gateway, "/v1/chat/completions", cut, "zstd")
        assert r.status_code == 400 and "truncated zstd" in r.json()["error"]["message"], r.text
