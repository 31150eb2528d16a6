"""Random bodies at the embeddings endpoints: never a 500, never a traceback, always the client's own error shape —
OpenAI's ``{"error": {"message", "type"}}`` at ``/v1/embeddings``, Ollama's ``{"error": "…"}`` at ``/api/embed`` and
``/api/embeddings`` (docs/api.md, "Errors"; ollama-js printed an object there as ``[object Object]``). Backends are
healthy fakes (their vectors as wide as a client may ask for), so a valid request gets vectors and an invalid one a
clear 4xx naming what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gateway.harness import GatewayServer
from tests.reliability.kit import fuzz_gateway, is_openai_error

PATHS = ("/v1/embeddings", "/api/embed", "/api/embeddings")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[GatewayServer]:
    with fuzz_gateway(tmp_path_factory.mktemp("fuzz-embed")) as gw:
        yield gw


SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["coder", "solo", "model:backup", "writer", "auto", "nope", ""]) | JSON},
    optional={"input": st.text(max_size=30) | st.lists(st.text(max_size=10), max_size=4)
              | st.lists(st.integers(min_value=0, max_value=100_000), max_size=4) | JSON,
              "prompt": st.text(max_size=30) | JSON, "encoding_format": st.sampled_from(["float", "base64"]) | JSON,
              "dimensions": st.integers(min_value=-2, max_value=20_000) | JSON})


def _shaped(path: str, r: httpx.Response) -> bool:
    payload = r.json()
    if path == "/v1/embeddings":
        return is_openai_error(payload)
    return isinstance(payload, dict) and isinstance(payload.get("error"), str) and bool(payload["error"])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), body=BODY | JSON)
def test_random_json_bodies(served, path, body):
    # json.dumps writes NaN/Infinity as bare words, as some clients do: not JSON, must still be a clean 400
    r = httpx.post(served.url + path, content=json.dumps(body).encode(), headers={"content-type": "application/json"},
                   timeout=60)
    assert r.status_code in (200, 400, 404, 424, 502, 503, 504), (path, body, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text, r.text[:300]
    assert "no endpoint" not in r.text  # the endpoint answered, not the gateway's 404 for a path it does not serve
    if r.status_code != 200:
        assert _shaped(path, r), (path, r.text[:300])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200))
def test_random_bytes(served, path, raw):
    r = httpx.post(served.url + path, content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code in (200, 400, 404), (path, raw, r.status_code, r.text[:300])
    assert "no endpoint" not in r.text
    if r.status_code != 200:
        assert _shaped(path, r), (path, r.text[:300])
