"""Request shapes real clients send (the inbound hunt, round 4), taken from their source.

``top_k`` on ``/v1/chat/completions`` and ``/v1/completions``: not OpenAI's field, but vLLM's, llama-server's and LM
Studio's OpenAI-compatible endpoints take it, and Open WebUI sends its "Top K" model setting there on an OpenAI
connection (open-webui backend/open_webui/utils/payload.py, ``apply_model_params_to_body``: a parameter without an
OpenAI mapping is put into the body as it is). It was dropped at the gateway (the Messages and Ollama APIs passed
theirs on, test_top_k_passed_on.py): the model sampled at its server's own top_k. These tests failed on the old code.

``thinking: {"type": "disabled"}`` on chat completions (Z.ai's GLM API): ignored, the model thought anyway.
An Azure OpenAI client (its deployment paths) got a 404 listing endpoints it cannot be told to call; it was told how
(that test is gone: the paths are served since, test_inbound_round5.py).
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gateway.test_sampling_passed_on import _post, fakes, gw  # noqa: F401

ASK = [{"role": "user", "content": "hi"}]


def test_chat_top_k_reaches_an_openai_compatible_server_and_ollama(gw, fakes):  # noqa: F811
    oa, ol = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", "messages": ASK, "top_k": 20})
    assert oa.last_request.json["top_k"] == 20
    _post(gw, "/v1/chat/completions", {"model": "viaollama", "messages": ASK, "top_k": 5})
    assert ol.last_request.json["options"]["top_k"] == 5


def test_text_completion_top_k_reaches_the_server(gw, fakes):  # noqa: F811
    oa, _ = fakes
    _post(gw, "/v1/completions", {"model": "viaopenai", "prompt": "1, 2, 3,", "top_k": 3})
    assert oa.last_request.json["top_k"] == 3


def test_vllms_every_token_top_k_is_taken_and_a_lower_one_named(gw, fakes):  # noqa: F811
    """-1 is vLLM's "consider all tokens" (its SamplingParams); below that is a 400 naming the field."""
    oa, _ = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", "messages": ASK, "top_k": -1})
    assert oa.last_request.json["top_k"] == -1
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=15,
                   json={"model": "viaopenai", "messages": ASK, "top_k": -2})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_k", r.text


@pytest.mark.parametrize(("thinking", "think"), [({"type": "disabled"}, False), ({"type": "enabled"}, True)])
def test_glms_thinking_switch_reaches_the_model(gw, fakes, thinking, think):  # noqa: F811
    """``thinking: {"type": "disabled"}``: how Z.ai's chat completions turn GLM's thinking off (docs.z.ai/guides/
    capabilities/thinking-mode); a client written for it (the openai SDK with ``extra_body``) pointed here got a model
    that thought anyway: Ollama was sent no ``think``."""
    _, ol = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaollama", "messages": ASK, "thinking": thinking})
    assert ol.last_request.json["think"] is think


@pytest.mark.parametrize(("extra", "thinking", "budget"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, True, 2048),
    ({"thinking": {"type": "other"}}, None, None),
    ({"reasoning_effort": "none", "thinking": {"type": "enabled"}}, False, None),  # OpenAI's word first
])
def test_the_thinking_switch_yields_to_openais_word_and_carries_its_budget(extra, thinking, budget):
    """The budget failed on the old code; guard: the last two cases held before too (an unknown type, OpenAI's word)."""
    from modelyard.gateway.wire import parse_body, to_chat_request

    asked = to_chat_request(parse_body(json.dumps({"model": "m", "messages": ASK, **extra}).encode()))
    assert (asked.thinking, asked.thinking_budget) == (thinking, budget)
