"""A request's stop sequences are bounded in number and length (gateway/wire.py ``MAX_STOPS``, ``MAX_STOP_CHARS``).

Each stop sequence is looked for in every piece of the answer, twice (the router's stop watch, the gateway's cut), on
the one event loop every client shares: 10,000 stop sequences of 100 characters (a 1 MB body, well under the size
bound) cost ~24 ms of the loop per piece each — one such streamed answer held every other client. OpenAI's API takes
at most 4 ("stop: Up to 4 sequences where the API will stop generating further tokens", the Chat Completions
reference); Anthropic's and Ollama's take a list (``stop_sequences``, ``options.stop``) and llama-server sets no
bound. Past the bound: a 400 naming the field, nothing sent to a backend. Each test fails on the old code (served),
but the guard at the end."""

from __future__ import annotations

import httpx
import pytest

from modelyard.gateway.wire import MAX_STOP_CHARS, MAX_STOPS
from tests.gateway.conftest import ANTHROPIC_KEY

MANY = [f"STOP{i}" for i in range(MAX_STOPS + 1)]
LONG = ["x" * (MAX_STOP_CHARS + 1)]
USER = [{"role": "user", "content": "hi"}]


def _bodies(stops: list[str]) -> list[tuple[str, dict, str]]:
    return [("/v1/chat/completions", {"model": "coder", "messages": USER, "stop": stops}, "stop"),
            ("/v1/completions", {"model": "coder", "prompt": "hi", "stop": stops}, "stop"),
            ("/v1/messages", {"model": "coder", "max_tokens": 16, "messages": USER, "stop_sequences": stops},
             "stop_sequences"),
            ("/api/chat", {"model": "coder", "messages": USER, "stream": False, "options": {"stop": stops}},
             "options.stop"),
            ("/api/generate", {"model": "coder", "prompt": "hi", "stream": False, "options": {"stop": stops}},
             "options.stop")]


@pytest.mark.parametrize("stops", [MANY, LONG], ids=["65 sequences", "one of 1,001 characters"])
def test_too_many_or_too_long_stop_sequences_are_a_400_naming_the_field(gateway, fakes, stops):
    for path, body, field in _bodies(stops):
        r = httpx.post(gateway.url + path, json=body, headers={"x-api-key": ANTHROPIC_KEY}, timeout=15)
        assert r.status_code == 400, (path, r.status_code, r.text[:300])
        assert field.split(".")[-1] in r.text, (path, r.text[:300])
    assert all(server.requests == [] for server in fakes), "a backend was asked"


def test_stop_sequences_up_to_the_bound_are_served(gateway, fakes):
    """Guard (served before the change too): 64 sequences of 1,000 characters each, on every API."""
    stops = [f"{i:02d}" + "y" * (MAX_STOP_CHARS - 2) for i in range(MAX_STOPS)]
    for path, body, _ in _bodies(stops):
        r = httpx.post(gateway.url + path, json=body, timeout=15)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
