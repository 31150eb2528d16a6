"""Request bodies over ``gateway.max_request_mb`` get a clear 413 (issue 8.5), declared or chunked."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gateway.harness import GatewayServer, fake_config


@pytest.fixture
def small_gateway(tmp_path, fakes, monkeypatch):
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"max_request_mb": 0.01})  # ~10 KB
    with GatewayServer(config) as gw:
        yield gw


def body(size: int) -> bytes:
    return json.dumps({"model": "coder", "messages": [{"role": "user", "content": "x" * size}]}).encode()


def test_oversized_body_is_413_with_a_clear_message(small_gateway, fakes):
    r = httpx.post(small_gateway.url + "/v1/chat/completions", content=body(50_000),
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "request_too_large" and "gateway.max_request_mb" in err["message"]
    assert "0.01 MB" in err["message"] and fakes[0].requests == []  # never reached a backend


def test_oversized_chunked_body_without_length_is_413(small_gateway, fakes):
    def pieces():
        for _ in range(20):
            yield b" " * 1000  # leading whitespace, then the JSON: only the size can refuse it
        yield body(10)

    r = httpx.post(small_gateway.url + "/v1/chat/completions", content=pieces(),
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert "more than" in r.json()["error"]["message"]


def test_body_under_the_limit_is_served(small_gateway):
    r = httpx.post(small_gateway.url + "/v1/chat/completions", content=body(2000),
                   headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from fast."


def test_a_body_opening_with_a_byte_order_mark_is_served(small_gateway):
    """A JSON file saved by a Windows tool (PowerShell, Notepad) starts with a UTF-8 BOM: not part of the JSON."""
    r = httpx.post(small_gateway.url + "/v1/chat/completions", content=b"\xef\xbb\xbf" + body(200),
                   headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from fast."


def test_default_limit_is_generous(tmp_path, fakes):
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    assert config.gateway.max_request_mb == 32
    with GatewayServer(config) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", content=body(1_000_000),
                       headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200


def test_a_client_gone_halfway_through_its_body_ends_quietly(gateway, caplog):
    """A client that goes away before its body is whole (or that serve closes for its silence, transport.py):
    its handler ended in starlette's ClientDisconnect, a traceback in the server's log ("Exception in ASGI
    application") for every one. It ends as a 499 now, with nothing logged at ERROR."""
    import logging
    import socket
    import time

    caplog.set_level(logging.INFO)
    drain = gateway.gateway.drain
    with socket.create_connection(("127.0.0.1", gateway.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 1000\r\n\r\n{\"model\": \"coder\"")
        deadline = time.monotonic() + 10
        while not drain._tasks:  # the handler is in, waiting for the rest of the body
            assert time.monotonic() < deadline
            time.sleep(0.01)
    while drain._tasks:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
