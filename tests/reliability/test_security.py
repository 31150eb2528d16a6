"""The gateway process bound beyond loopback: keys required, and no secret anywhere.

``modelyard serve`` listens on 0.0.0.0 (every connection in this test still goes to 127.0.0.1),
with two gateway keys, an Anthropic key for the fake cloud backend and a Telegram token in its
environment. Requests without a key, with a wrong key, a near-miss key and a valid key are
made; a backend is made to *echo the API key* in its 401 error. Then every place a secret
could surface is scanned for all of them: the process's stdout/stderr (access log on, debug
level), the SQLite log (iterdump), the dashboard page and its APIs, /metrics, /healthz,
/v1/models, and every response body and header the clients received.

Telegram (allowlist, forged callbacks, token) and tools are covered in tests/frontends and
tests/agents plus test_tool_security.py; see RELIABILITY.md.
"""

from __future__ import annotations

import httpx
import pytest
from tests.fakes import Fault
from tests.reliability.kit import ANTHROPIC_KEY, backends
from tests.reliability.loadgen import GatewayProcess, write_config

from modelyard.ledger import connect

KEYS_ENV, TG_ENV = "RELIABILITY_GATEWAY_KEYS", "RELIABILITY_TG_TOKEN"
GATEWAY_KEYS = ("gwk-live-7f3a9c2e5b1d4f608a7c", "gwk-second-0b5e8d2c4a6f1e3d7c9b")
TG_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRETS = (*GATEWAY_KEYS, ANTHROPIC_KEY, TG_TOKEN, TG_TOKEN.split(":")[1])
CHAT = {"model": "writer", "messages": [{"role": "user", "content": "hello"}]}


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("security")
    with backends() as servers:
        config = write_config(directory, servers, extra={
            "agents": {"writer": {"primary": "cloud", "fallbacks": ["fast"]}, "chain": {"primary": "fast"}},
            "gateway": {"api_keys_env": KEYS_ENV},
            "telegram": {"token_env": TG_ENV, "allowed_users": [1]},
        })
        gateway = GatewayProcess(config, directory, host="0.0.0.0", access_log=True, log_level="debug",
                                 env={KEYS_ENV: ",".join(GATEWAY_KEYS), TG_ENV: TG_TOKEN})
        gateway.start()
        try:
            yield gateway, servers, directory
        finally:
            gateway.stop()


def test_keys_are_required_beyond_loopback(exposed):
    gateway, _, _ = exposed
    url = gateway.url
    protected = [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/v1/models/writer"),
                 ("GET", "/metrics"), ("GET", "/api/log"), ("GET", "/api/summary")]
    wrong = [{}, {"authorization": "Bearer"}, auth(GATEWAY_KEYS[0][:-1]), auth(GATEWAY_KEYS[0] + "x"),
             auth(GATEWAY_KEYS[0].upper()),
             {"authorization": "Basic " + GATEWAY_KEYS[0]}, {"authorization": GATEWAY_KEYS[0]},
             auth(ANTHROPIC_KEY), {"x-api-key": GATEWAY_KEYS[0]}]
    for method, path in protected:
        for headers in wrong:
            r = httpx.request(method, url + path, json=CHAT if method == "POST" else None, headers=headers)
            assert r.status_code == 401, (path, headers, r.status_code)
            assert r.json()["error"]["code"] == "invalid_api_key"
        for key in GATEWAY_KEYS:
            r = httpx.request(method, url + path, json=CHAT if method == "POST" else None, headers=auth(key))
            assert r.status_code == 200, (path, r.text)
    assert httpx.get(url + "/healthz").status_code == 200  # liveness stays open, and holds no data


def test_the_anthropic_and_ollama_endpoints_require_the_key_too(exposed):
    """Anthropic's clients send the key as ``x-api-key`` (taken there, and only there); Ollama's as a bearer."""
    gateway, _, _ = exposed
    message = {"model": "chain", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, {"x-api-key": GATEWAY_KEYS[0] + "x"}, auth(ANTHROPIC_KEY), {"x-api-key": ANTHROPIC_KEY}):
        r = httpx.post(gateway.url + "/v1/messages", json=message, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error", (headers, r.text)
        r = httpx.post(gateway.url + "/api/chat", json={**message, "stream": False}, headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"], (headers, r.text)
    for headers in ({"x-api-key": GATEWAY_KEYS[0]}, auth(GATEWAY_KEYS[1])):
        assert httpx.post(gateway.url + "/v1/messages", json=message, headers=headers).status_code == 200
    assert httpx.post(gateway.url + "/api/chat", json={**message, "stream": False},
                      headers=auth(GATEWAY_KEYS[0])).status_code == 200
    assert httpx.get(gateway.url + "/api/tags").status_code == 401
    assert httpx.get(gateway.url + "/api/version").status_code == 200  # holds no data, as /healthz


def test_no_secret_anywhere(exposed):
    gateway, (oa, ol, an), directory = exposed
    url, key = gateway.url, GATEWAY_KEYS[0]
    seen: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        seen.append(r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items()))
        return r

    # a backend that echoes the key it was sent in its error message (some do)
    an.push(Fault.status(401, message=f"invalid x-api-key: {ANTHROPIC_KEY}"))
    fell_back = keep(httpx.post(url + "/v1/chat/completions", json=CHAT, headers=auth(key)))
    assert fell_back.status_code == 200 and fell_back.headers["x-modelyard-model"] == "fast"
    an.push(Fault.status(401, message=f"invalid x-api-key: {ANTHROPIC_KEY}"))
    direct = keep(httpx.post(url + "/v1/chat/completions", headers=auth(key),
                             json={**CHAT, "model": "model:cloud"}))
    assert direct.status_code == 424 and direct.json()["error"]["attempts"]  # a refused key: retrying cannot help
    keep(httpx.post(url + "/v1/chat/completions", headers=auth(key), json={**CHAT, "stream": True}))
    keep(httpx.post(url + "/v1/chat/completions", headers=auth(key), json={"model": "nope", "messages": []}))
    keep(httpx.post(url + "/v1/chat/completions", headers=auth(key), content=b"{not json"))
    keep(httpx.post(url + "/v1/chat/completions", headers=auth(GATEWAY_KEYS[1][:-2]), json=CHAT))
    for path in ("/", "/dashboard", "/api/log?limit=500", "/api/summary", "/metrics", "/healthz", "/v1/models",
                 "/no/such/path"):
        keep(httpx.get(url + path, headers=auth(key)))
    # the fake cloud backend really received the key (so there was one to leak)
    assert an.requests and an.requests[0].headers["x-api-key"] == ANTHROPIC_KEY
    gateway.stop()
    output = gateway.output()
    assert "POST /v1/chat/completions" in output  # the access log was on
    dump = "\n".join(connect(directory / "log.db", readonly=True).iterdump())
    assert "invalid x-api-key" in dump  # the echoing error was logged, redacted
    places = {"gateway stdout/stderr": output, "routing log (iterdump)": dump, "responses": "\n".join(seen)}
    for where, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"a secret ({secret[:6]}...) leaked into the {where}"
    gateway.start()  # leave it running for the module's other tests
