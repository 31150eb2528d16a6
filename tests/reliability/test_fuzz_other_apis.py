"""Random request bodies at the Anthropic and Ollama endpoints: never a 500, never a traceback, and an
error always in that API's own shape (what its clients parse).

Hand-written validation (content blocks, tool results, tool calls with object arguments) is where a
``KeyError`` or ``AttributeError`` on an unexpected shape would hide; hypothesis looks for one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gateway.harness import GatewayServer
from tests.reliability.kit import fuzz_gateway

OK = (200, 400, 404, 424, 502, 503, 504)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[GatewayServer]:
    with fuzz_gateway(tmp_path_factory.mktemp("fuzz-apis")) as gw:
        yield gw


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=16)
BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "tool_use", "tool_result", "thinking", "image", "x"]) | JSON},
    optional={"text": JSON, "id": JSON, "name": JSON, "input": JSON, "tool_use_id": JSON, "content": JSON,
              "is_error": JSON})
CLAUDE_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | JSON},
    optional={"content": st.text(max_size=20) | st.lists(BLOCK, max_size=3) | JSON})
CLAUDE_BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["coder", "solo", "auto", "nope"]),
     "messages": st.lists(CLAUDE_MESSAGE, min_size=1, max_size=3)},
    optional={"max_tokens": st.integers(-1, 50) | JSON, "system": JSON, "stream": st.booleans() | JSON,
              "tools": JSON, "tool_choice": JSON, "thinking": JSON, "output_config": JSON,
              "stop_sequences": JSON, "temperature": JSON})
OLLAMA_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]) | JSON},
    optional={"content": st.text(max_size=20) | JSON, "tool_calls": JSON, "tool_name": JSON, "images": JSON})
OLLAMA_BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["coder", "coder:latest", "solo", "nope"])},
    optional={"messages": st.lists(OLLAMA_MESSAGE, min_size=1, max_size=3), "prompt": JSON, "system": JSON,
              "stream": st.booleans() | JSON, "tools": JSON, "format": JSON, "options": JSON, "think": JSON,
              "images": JSON})


def _post(served: GatewayServer, path: str, body: object) -> httpx.Response:
    return httpx.post(served.url + path, content=json.dumps(body).encode(),
                      headers={"content-type": "application/json"}, timeout=30)


def _clean(r: httpx.Response, body: object) -> None:
    assert r.status_code in OK, (body, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text, r.text[:300]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=CLAUDE_BODY | CLAUDE_BODY | CLAUDE_BODY | JSON, counting=st.booleans())
def test_anthropic_endpoint_takes_any_body_cleanly(served, body, counting):
    r = _post(served, "/v1/messages/count_tokens" if counting else "/v1/messages", body)
    _clean(r, body)
    if r.status_code >= 400:
        error = r.json()
        assert error["type"] == "error" and isinstance(error["error"]["message"], str), r.text[:300]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=OLLAMA_BODY | OLLAMA_BODY | OLLAMA_BODY | JSON,
       path=st.sampled_from(["/api/chat", "/api/chat", "/api/generate", "/api/show"]))
def test_ollama_endpoints_take_any_body_cleanly(served, body, path):
    r = _post(served, path, body)
    _clean(r, body)
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str), r.text[:300]
    elif r.headers["content-type"].startswith("application/x-ndjson"):
        lines = [json.loads(line) for line in r.text.splitlines() if line]
        assert lines and (lines[-1].get("done") is True or "error" in lines[-1]), r.text[:300]
