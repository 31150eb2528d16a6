"""Request shapes real clients send to the gateway (the inbound hunt, RELIABILITY.md): each gets an answer
or a clear 4xx in the API's own error shape."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest

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


@pytest.mark.parametrize("path", ["//v1/chat/completions", "/v1/chat/completions/", "/v1//chat/completions"])
def test_a_path_spelled_with_extra_slashes_is_the_endpoint(gateway, path):
    """A base URL ending in '/' joined with '/v1/…' (Starlette read '//v1' as a host and said 'no endpoint
    POST /chat/completions'), or a trailing '/' (a 307 the SDKs do not follow for a POST)."""
    import json

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
    r = httpx.post(gateway.url + "/v1/completions", json={"model": "coder", "prompt": "hi"}, timeout=15)
    assert r.status_code == 404 and "no endpoint POST /v1/completions" in r.json()["error"]["message"]
    r = httpx.get(gateway.url + "/api/embed", timeout=15)
    assert r.status_code == 404 and "/api/embed" in r.json()["error"]
