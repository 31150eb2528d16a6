"""What a first-time client gets wrong at the gateway is answered in words that say what to do."""

from __future__ import annotations

import httpx


def test_a_get_where_a_post_belongs_says_to_post(gateway) -> None:
    """`curl http://127.0.0.1:8765/v1/chat/completions` (a GET) got {"message": "Method Not Allowed", "code": null}."""
    r = httpx.get(gateway.url + "/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["message"] == "GET /v1/chat/completions is not served: use POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.get(gateway.url + "/api/chat")  # an Ollama path answers in Ollama's shape
    assert r.status_code == 405 and r.json()["error"] == "GET /api/chat is not served: use POST"
