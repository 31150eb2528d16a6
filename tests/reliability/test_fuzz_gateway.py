"""Random request bodies against the gateway: never a 500, never a traceback for the user.

Two fuzzers: schemathesis drives every operation of the gateway's own OpenAPI document
(``/openapi.json``) with schema-valid and schema-violating inputs; hypothesis throws arbitrary
JSON (and non-JSON bytes) at ``/v1/chat/completions``. Backends are healthy fakes, so a valid
request gets a real answer and an invalid one must get a clear 4xx in OpenAI's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gateway.harness import GatewayServer
from tests.reliability.kit import fuzz_gateway, is_openai_error

from modelyard.gateway.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[GatewayServer]:
    with fuzz_gateway(tmp_path_factory.mktemp("fuzz")) as gw:
        yield gw


def no_traceback(r: httpx.Response | object, text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[:500]


def test_openapi_document_is_served_and_matches(served):
    r = httpx.get(served.url + "/openapi.json")
    assert r.status_code == 200 and r.json() == json.loads(json.dumps(openapi_document()))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis(case, served):
    response = case.call(base_url=served.url, timeout=30)
    assert response.status_code < 500 or response.status_code in (502, 503, 504), \
        (case.method, case.path, response.text[:300])
    no_traceback(response, response.text)
    if response.status_code >= 400:
        assert is_openai_error(response.json()), response.text[:300]
    case.validate_response(response)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                    max_leaves=20)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "x"])},
                                optional={"content": JSON | st.text(max_size=40), "tool_calls": JSON,
                                          "tool_call_id": JSON, "name": JSON})
BODY = st.fixed_dictionaries(
    {"model": st.sampled_from(["coder", "solo", "model:backup", "fast", "nope", ""]) | JSON,
     "messages": st.lists(MESSAGE, max_size=3) | JSON},
    optional={"stream": st.booleans() | JSON, "tools": JSON, "tool_choice": JSON, "max_tokens": JSON,
              "temperature": JSON, "response_format": JSON, "stream_options": JSON, "n": JSON, "extra": JSON})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODY | JSON)
def test_random_json_bodies(served, body):
    # json.dumps writes NaN/Infinity as bare words, as some clients do: not JSON, must still be a clean 400
    r = httpx.post(served.url + "/v1/chat/completions", content=json.dumps(body).encode(),
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code in (200, 400, 404, 424, 502, 503, 504), (body, r.status_code, r.text[:300])
    no_traceback(r, r.text)
    if r.status_code != 200:
        assert is_openai_error(r.json())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_random_bytes(served, raw, content_type):
    r = httpx.post(served.url + "/v1/chat/completions", content=raw, headers={"content-type": content_type},
                   timeout=30)
    assert r.status_code in (400, 404), (raw, r.status_code, r.text[:300])
    assert is_openai_error(r.json())
