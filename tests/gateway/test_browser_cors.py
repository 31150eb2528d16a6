"""Browsers calling the gateway from a page (gateway/cors.py): the preflight is answered for pages that may call, the
answer names their origin, and a page from another web site cannot drive a gateway that asks for no key.

The shapes are the browsers' (the Fetch standard's CORS protocol) as users of other OpenAI-compatible servers reported
them: Open WebUI's direct connections from http://localhost:3000 (huggingface/transformers #39932, "OPTIONS
/v1/chat/completions 405"; openvinotoolkit/model_server #3417), BetterChatGPT (bricks-cloud/BricksLLM #45), Obsidian
Companion's ``OPTIONS /v1/models`` (Trans-N-ai/swama #87); the preflight must allow ``Authorization`` (ollama/ollama
#4001)."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.harness import GatewayServer, fake_config

BODY = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}
PAGE = "http://localhost:3000"  # Open WebUI's default port
ELSEWHERE = "https://chat.example.com"


def _preflight(url: str, origin: str, headers: str = "authorization,content-type") -> httpx.Response:
    return httpx.options(url, timeout=15, headers={"origin": origin, "access-control-request-method": "POST",
                                                   "access-control-request-headers": headers})


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/models", "/api/chat"])
def test_a_local_pages_preflight_is_answered(gateway, path):
    r = _preflight(gateway.url + path, PAGE, "authorization,content-type,x-stainless-os,anthropic-version")
    assert r.status_code == 204, r.text  # was 405 Method Not Allowed: the browser said "CORS error"
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "authorization,content-type,x-stainless-os,anthropic-version"


@pytest.mark.parametrize("stream", [False, True])
def test_a_local_pages_answer_names_its_origin_and_lets_it_read_the_route(gateway, stream):
    r = httpx.post(gateway.url + "/v1/chat/completions", json={**BODY, "stream": stream}, timeout=15,
                   headers={"origin": PAGE})
    assert r.status_code == 200, r.text
    assert ("[DONE]" if stream else "Hello from fast.") in r.text
    assert r.headers["access-control-allow-origin"] == PAGE  # was absent: the page could not read the answer
    assert "x-modelyard-route" in r.headers["access-control-expose-headers"]
    plain = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, timeout=15)  # no browser: no CORS headers
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize("origin", ["chrome-extension://jfgfiigpkhlkbnfnbobbkinehhfdhndo", "app://obsidian.md",
                                    "http://127.0.0.1:5173", "http://[::1]:8080"])
def test_pages_on_this_machine_and_extensions_may_call(gateway, origin):
    r = httpx.post(gateway.url + "/api/chat", json={**BODY, "stream": False}, timeout=15, headers={"origin": origin})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(("path", "body", "shape"), [
    ("/v1/chat/completions", BODY, lambda j: j["error"]["code"]),
    ("/v1/messages", {**BODY, "max_tokens": 10}, lambda j: j["type"] == "error" and j["error"]["type"]),
    ("/api/chat", BODY, lambda j: isinstance(j["error"], str) and j["error"]),
])
def test_a_page_from_another_site_cannot_drive_a_keyless_gateway(gateway, fakes, path, body, shape):
    """A form or a text/plain fetch needs no preflight: any site the user visits could have spent the gateway's
    models (it answered 200). Refused in the API's own error shape, nothing sent to a model."""
    r = httpx.post(gateway.url + path, content=httpx.Request("POST", "/", json=body).content, timeout=15,
                   headers={"origin": ELSEWHERE, "content-type": "text/plain"})
    assert r.status_code == 403, r.text
    assert shape(r.json()) and ELSEWHERE in r.text
    assert "access-control-allow-origin" not in r.headers
    assert not any(f.requests for f in fakes)
    assert _preflight(gateway.url + path, ELSEWHERE).status_code == 403
    assert _preflight(gateway.url + path, "null").status_code == 403  # a sandboxed or data: page


def test_the_gateways_own_pages_may_call(gateway):
    own = gateway.url  # the dashboard's origin, whatever address the gateway is reached at
    r = httpx.get(gateway.url + "/api/log", timeout=15, headers={"origin": own})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == own


def test_with_keys_any_site_may_ask_and_is_told_its_key_is_missing(tmp_path, fakes):
    """With keys the key is the gate (OpenAI's API answers any origin): a hosted Open WebUI calls a LAN gateway."""
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), api_keys=("sk-gw-1",)) as gw:
        assert _preflight(gw.url + "/v1/chat/completions", ELSEWHERE).status_code == 204
        r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=15, headers={"origin": ELSEWHERE})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ELSEWHERE  # readable by the page
        r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=15,
                       headers={"origin": ELSEWHERE, "authorization": "Bearer sk-gw-1"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ELSEWHERE
        r = httpx.get(gw.url + "/v1/models", timeout=15,  # behind a proxy, or on a LAN by name
                      headers={"host": "gw.example.com", "authorization": "Bearer sk-gw-1"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("host", ["rebind.attacker.example", "rebind.attacker.example:8765", "evil.example."])
def test_a_keyless_gateway_answers_no_request_addressed_to_a_public_name(gateway, fakes, host):
    """DNS rebinding: a page of rebind.attacker.example whose name then resolves to 127.0.0.1 is same-origin with the
    gateway — no preflight, and for a GET no Origin — so it could read the routing log (prompts, with store_text) or
    spend models; Ollama closed the same hole by checking Host (CVE-2024-28224). Was 200. Names of this machine
    still are answered."""
    r = httpx.get(gateway.url + "/api/log", timeout=15, headers={"host": host})
    assert r.status_code == 403 and "no name of this machine" in r.json()["error"]["message"], r.text
    r = httpx.post(gateway.url + "/v1/chat/completions", json=BODY, timeout=15,
                   headers={"host": host, "origin": f"http://{host}", "content-type": "text/plain"})
    assert r.status_code == 403, r.text
    assert not any(f.requests for f in fakes)
    for here in ("127.0.0.1:8765", "localhost", "[::1]:8765", "myhost", "box.local", "10.0.0.5", "dev.localhost:3000"):
        assert httpx.get(gateway.url + "/v1/models", timeout=15, headers={"host": here}).status_code == 200, here


# A keyless gateway behind a reverse proxy or a tunnel that passes on its public name: Ollama's users met the same
# refusal after its CVE-2024-28224 fix (ollama/ollama #3269: ngrok, zrok, Cloudflare Tunnel, Tailscale serve; told to
# rewrite the Host header at the proxy). Caddy's reverse_proxy passes the client's Host on by default, as nginx does
# with `proxy_set_header Host $host` (open-webui/open-webui #261 shows that configuration).
PROXIED = ("gw.example.com", "gw.example.com:443", "GW.Example.com.", "box.tail1234.ts.net")


@pytest.mark.parametrize("host", PROXIED)
def test_a_keyless_gateway_answers_the_public_names_its_config_allows(tmp_path, fakes, host):
    """Was 403 for every request through the proxy, with no setting to change that but keys."""
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"allowed_hosts": ["gw.example.com", "*.ts.net"]})
    with GatewayServer(config) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=15,
                       headers={"host": host, "x-forwarded-for": "203.0.113.9"})
        assert r.status_code == 200, r.text
        for other in ("rebind.attacker.example", "example.com", "ts.net", "gw.example.com.evil.example"):
            r = httpx.get(gw.url + "/api/log", timeout=15, headers={"host": other})
            assert r.status_code == 403, (other, r.text)  # the guard holds for every name not listed
        assert httpx.get(gw.url + "/v1/models", timeout=15, headers={"host": "localhost"}).status_code == 200


def test_the_403_for_a_public_name_names_the_setting_that_allows_it(gateway):
    r = httpx.get(gateway.url + "/v1/models", timeout=15, headers={"host": "gw.example.com"})
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert "gateway.allowed_hosts" in message and "gateway.api_keys_env" in message, message


def test_a_page_under_an_allowed_name_may_call_but_not_one_under_a_wildcard(tmp_path, fakes):
    """A chat UI served beside the gateway behind the same proxy (Caddy routing /v1 to the gateway and / to the UI
    under one name) sends its name as Origin on every POST: refused as "a web page from https://gw.example.com" though
    the name was allowed. A name listed whole is the user's; a subdomain of a ``*.`` entry may be anyone's
    (``*.trycloudflare.com``, ``*.ts.net`` with Funnel), so its pages are still refused."""
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"allowed_hosts": ["gw.example.com", "*.ts.net"]})
    with GatewayServer(config) as gw:
        mine = "https://gw.example.com"
        assert _preflight(gw.url + "/v1/chat/completions", mine).status_code == 204
        r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=15,
                       headers={"host": "gw.example.com", "origin": mine})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == mine, r.text
        for page in ("https://someone.ts.net", "https://gw.example.com.evil.example", ELSEWHERE):
            r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=15,
                           headers={"host": "box.tail1234.ts.net", "origin": page, "content-type": "text/plain"})
            assert r.status_code == 403 and page in r.text, (page, r.text)
