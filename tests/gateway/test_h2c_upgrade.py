"""A request that offers ``Upgrade: h2c`` is served over HTTP/1.1 with its body, as RFC 9110 §7.8 lets a server ignore
an upgrade. Every JDK ``HttpClient`` offers it on a cleartext URL (LangChain4j, Spring AI, Spring's RestClient): the
request as jetty/jetty.project#9998 shows Java 20's client writing it, and chunked as Kludex/uvicorn#2722 shows Spring's
RestClient writing it. Under uvicorn's httptools protocol the body was dropped — the app read an empty body and the
gateway answered 400 "the request body is not a JSON object" (also MagicStack/httptools#124, langchain4j#3682, vLLM's
#57203). These tests failed on the old code (the GET's, a guard, passed: it has no body to lose).
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.gateway.test_spec_shapes import BASE, PATHS, fakes, gw  # noqa: F401  (the module's gateway, reused)

JAVA_HEAD = (b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n"
             b"Upgrade: h2c\r\nUser-Agent: Java-http-client/21.0.2\r\nContent-Type: application/json\r\nHost: x\r\n")


def _answer(port: int, pieces: list[bytes]) -> tuple[bytes, bytes]:
    """Send ``pieces`` one write each (a body split across reads), read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.02)  # apart on the wire: each its own read at the server (no synchronisation rests on it)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("api", ["chat", "messages", "ollama_chat"])
def test_a_java_clients_h2c_offer_with_a_length_is_served(gw, api):  # noqa: F811
    body = json.dumps(BASE[api]).encode()
    head = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (PATHS[api].encode(), JAVA_HEAD, len(body))
    status, answer = _answer(gw.port, [head + body[:10], body[10:]])
    assert status.startswith(b"HTTP/1.1 200"), status + answer[:300]
    assert b"Hello from" in answer
    assert b"connection: close" in status.lower()  # what followed on the connection is not read: it says so


def test_a_chunked_body_after_an_h2c_offer_is_served(gw):  # noqa: F811
    body = json.dumps(BASE["chat"]).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % JAVA_HEAD
    chunks = [b"%x\r\n%s\r\n" % (len(body[:15]), body[:15]), b"%x\r\n%s\r\n0\r\n\r\n" % (len(body[15:]), body[15:])]
    status, answer = _answer(gw.port, [head, *chunks])
    assert status.startswith(b"HTTP/1.1 200"), status + answer[:300]
    assert json.loads(answer)["choices"][0]["message"]["content"] == "Hello from fast."


def test_a_get_with_an_h2c_offer_is_served(gw):  # noqa: F811
    status, answer = _answer(gw.port, [b"GET /v1/models HTTP/1.1\r\n" + JAVA_HEAD.replace(b"Content-Type: application/"
                                                                                          b"json\r\n", b"") + b"\r\n"])
    assert status.startswith(b"HTTP/1.1 200") and b'"coder"' in answer, status


def test_a_broken_chunk_after_an_h2c_offer_is_a_400_in_the_apis_shape(gw):  # noqa: F811
    head = b"POST /v1/chat/completions HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % JAVA_HEAD
    status, answer = _answer(gw.port, [head + b"zz\r\n{}\r\n0\r\n\r\n"])
    assert status.startswith(b"HTTP/1.1 400"), status
    assert "chunk size" in json.loads(answer)["error"]["message"]


WS_HEAD = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Type: application/json\r\nHost: x\r\n")


@pytest.mark.parametrize("api", ["chat", "messages", "ollama_chat"])
def test_a_post_offering_websocket_is_served_over_http_1_1(gw, api):  # noqa: F811
    """NEW: a POST with ``Upgrade: websocket`` (RFC 6455 §4.1's head; the gateway serves no WebSocket) was handed to
    uvicorn's WebSocket protocol, which closed the connection with no answer at all. RFC 9110 §7.8 lets a server
    ignore an Upgrade: declined as ``h2c`` is, it is served over HTTP/1.1 with its body."""
    body = json.dumps(BASE[api]).encode()
    head = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (PATHS[api].encode(), WS_HEAD, len(body))
    status, answer = _answer(gw.port, [head + body[:10], body[10:]])
    assert status.startswith(b"HTTP/1.1 200"), status + answer[:300]
    assert b"Hello from" in answer


def test_a_get_offering_websocket_is_answered_over_http_1_1(gw):  # noqa: F811
    """NEW: a WebSocket handshake (RFC 6455 §4.1) gets an HTTP answer, not a closed connection: the client's
    handshake fails with a status it can show (RFC 6455 §4.1: anything but 101 fails it)."""
    status, answer = _answer(gw.port, [b"GET /v1/models HTTP/1.1\r\n" + WS_HEAD + b"\r\n"])
    assert status.startswith(b"HTTP/1.1 200") and b'"coder"' in answer, status
