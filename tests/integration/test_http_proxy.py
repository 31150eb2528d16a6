"""Model calls through the environment's HTTP proxy, as curl and the official SDKs make them (httpx's ``trust_env``):
behind a company proxy the cloud API's name resolves only there. Was: modelyard called every model directly, so the
cloud model was unreachable (its name did not resolve) while curl, the SDKs and Claude Code got through
(docs.anthropic.com/en/docs/claude-code/corporate-proxy; LiteLLM's users ask the same, litellm#3380).

The proxy is tests/fakes/forward_proxy.py: absolute-form requests and Basic proxy credentials (RFC 9112 §3.2.2, RFC
9110 §15.5.8), names resolved by the proxy alone (``.test`` never resolves here, RFC 6761).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import httpx
import pytest
from tests.fakes import OllamaServer, OpenAIServer
from tests.fakes.forward_proxy import ForwardProxy
from tests.gateway.harness import GatewayServer, make_config

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                   "no_proxy")


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIServer, OllamaServer]]:
    with OpenAIServer(reply_text="from the cloud") as cloud, OllamaServer(reply_text="from the local model") as local:
        yield cloud, local


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def _config(tmp_path, cloud: OpenAIServer, local: OllamaServer):
    models = {"cloud": {"provider": "openai", "endpoint": f"http://api.cloud.test:{cloud.port}/v1",
                        "model": "big-model", "max_concurrent": 2},
              "local": {"provider": "ollama", "endpoint": local.url, "model": "small-model", "max_concurrent": 2}}
    agents = {"chat": {"primary": "cloud", "fallbacks": ["local"]}, "home": {"primary": "local"}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 5, "idle": 5, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


def _ask(gw: GatewayServer, agent: str) -> httpx.Response:
    # the test's own client goes to the gateway directly (httpx would send even 127.0.0.1 through HTTP_PROXY)
    with httpx.Client(trust_env=False, timeout=20) as client:
        return client.post(gw.url + "/v1/chat/completions",
                           json={"model": agent, "messages": [{"role": "user", "content": "hi"}]})


def test_the_cloud_model_is_reached_through_the_proxy_and_local_ones_directly(tmp_path, servers, monkeypatch,
                                                                             caplog):
    cloud, local = servers
    with ForwardProxy({"api.cloud.test": cloud.port}, user="corp", password="s3cret") as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://corp:s3cret@127.0.0.1:{proxy.port}")
        with caplog.at_level(logging.DEBUG), GatewayServer(_config(tmp_path, cloud, local)) as gw:
            r = _ask(gw, "chat")
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "from the cloud" and r.json()["model"] == "cloud"
            home = _ask(gw, "home")
            assert home.status_code == 200 and home.json()["model"] == "local"
        credentials = base64.b64encode(b"corp:s3cret").decode()
        assert proxy.seen and all(target.startswith(f"http://api.cloud.test:{cloud.port}/v1/")
                                  and auth == f"Basic {credentials}" for target, auth in proxy.seen), proxy.seen
        assert local.requests_to("/api/chat"), "the loopback model was not asked directly"
    assert "s3cret" not in caplog.text


def test_no_proxy_sends_a_name_directly(tmp_path, servers, monkeypatch):
    """``NO_PROXY`` names the host: called directly, as curl does — here the name does not resolve, so the chain's
    local fallback answers."""
    cloud, local = servers
    with ForwardProxy({"api.cloud.test": cloud.port}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,.cloud.test")
        with GatewayServer(_config(tmp_path, cloud, local)) as gw:
            r = _ask(gw, "chat")
            assert r.status_code == 200 and r.json()["model"] == "local", r.text
        assert proxy.seen == []


def test_a_socks_proxy_is_said_once_and_models_are_called_directly(tmp_path, servers, monkeypatch, caplog):
    """aiohttp speaks to http:// and https:// proxies only: a SOCKS one is named in the log (never its address, which
    may hold a password) and the endpoints are called directly, as before."""
    cloud, local = servers
    monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@127.0.0.1:1")
    with caplog.at_level(logging.WARNING), GatewayServer(_config(tmp_path, cloud, local)) as gw:
        r = _ask(gw, "chat")
        assert r.status_code == 200 and r.json()["model"] == "local", r.text
    said = [rec.getMessage() for rec in caplog.records if "proxy" in rec.getMessage()]
    assert said and "socks5://" in said[0] and "pw@" not in caplog.text
