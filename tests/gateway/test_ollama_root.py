"""The base URL answers an Ollama client's probe as Ollama does, and a browser with the dashboard.

Ollama registers ``GET /`` and ``HEAD /`` and answers both ``200 Ollama is running``, ``text/plain; charset=utf-8``
(the curl transcript in ollama/ollama-python#121; ollama/ollama#1378). Clients probe it: the ``ollama`` CLI's
``Client.Heartbeat`` is ``c.do(ctx, http.MethodHead, "/", nil, nil)`` (ollama api/client.go), Page Assist's
``isOllamaRunning`` fetches the base URL (n4ze3m/page-assist src/services/ai/ollama.ts), chat-ollama compared the
text (``res !== 'Ollama is running'``, sugarforever/chat-ollama#158) and Alpaca's connectivity check needed the root
endpoint (Jeffser/Alpaca#160). A browser's navigation sends ``Accept: text/html,…`` (below: Chromium's and Firefox's
default), so it still gets the dashboard.
"""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.harness import GatewayServer

CHROMIUM_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
                   "application/signed-exchange;v=b3;q=0.7")
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"],
                         ids=["no Accept (Go's net/http)", "*/* (curl, fetch, httpx)", "json"])
def test_get_root_answers_ollama_is_running(gateway: GatewayServer, accept):
    with httpx.Client() as client:
        del client.headers["accept"]
        r = client.get(gateway.url + "/", headers={} if accept is None else {"accept": accept})
        assert ("accept" in r.request.headers) == (accept is not None)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == "Ollama is running"


def test_head_root_is_the_ollama_cli_heartbeat(gateway: GatewayServer):
    r = httpx.head(gateway.url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == str(len("Ollama is running"))


@pytest.mark.parametrize("accept", [CHROMIUM_ACCEPT, FIREFOX_ACCEPT], ids=["chromium", "firefox"])
def test_a_browser_still_gets_the_dashboard(gateway: GatewayServer, accept):
    r = httpx.get(gateway.url + "/", headers={"accept": accept})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.content == gateway.gateway.page


def test_dashboard_path_is_always_the_page(gateway: GatewayServer):
    r = httpx.get(gateway.url + "/dashboard", headers={"accept": "*/*"})
    assert r.status_code == 200 and r.content == gateway.gateway.page
