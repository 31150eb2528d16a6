"""A client's ``top_k`` reaches the model's server.

Anthropic's Messages API takes ``top_k`` ("Only sample from the top K options for each subsequent token … Recommended
for advanced use cases only", its API reference: docs.anthropic.com/en/api/messages; anthropic-sdk-python's
``MessageCreateParams.top_k``; LangChain's ``ChatAnthropic(top_k=…)`` sends it); Ollama's API takes ``options.top_k``
("Reduces the probability of generating nonsense. A higher value (e.g. 100) will give more diverse answers",
docs.ollama.com/modelfile; Open WebUI sends it). Both were dropped at the gateway: the model sampled from every token,
the client's knob had no effect and no word said so. Now passed on to OpenAI-compatible servers (vLLM's, llama-server's
and LM Studio's ``top_k``) and Ollama (``options.top_k``); OpenAI's own API refuses it — 400 "Unrecognized request
argument supplied: top_k" (xlinx/sd-webui-decadetw-auto-prompt-llm#29) — so it is left out there, learned, as a
refused ``top_p`` is (providers/sampling.py). The tests failed on the old code; the guard says so.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelyard.types import ChatRequest, Message
from tests.fakes import OpenAIServer
from tests.gateway.test_sampling_passed_on import CHAT, _post, fakes, gw  # noqa: F401
from tests.integration.test_sampling_refused import REPLY, RefusingServer, _routed, _sent


def test_messages_top_k_reaches_an_openai_compatible_server_and_ollama(gw, fakes):  # noqa: F811
    oa, ol = fakes
    _post(gw, "/v1/messages", {"model": "viaopenai", "max_tokens": 20, **CHAT, "top_k": 40})
    assert oa.last_request.json["top_k"] == 40
    _post(gw, "/v1/messages", {"model": "viaollama", "max_tokens": 20, **CHAT, "top_k": 5})
    assert ol.last_request.json["options"]["top_k"] == 5


def test_ollamas_options_top_k_is_passed_on(gw, fakes):  # noqa: F811
    oa, ol = fakes
    _post(gw, "/api/chat", {"model": "viaopenai", **CHAT, "options": {"top_k": 20}})
    assert oa.last_request.json["top_k"] == 20
    _post(gw, "/api/chat", {"model": "viaollama", **CHAT, "options": {"top_k": 1}})
    assert ol.last_request.json["options"]["top_k"] == 1


def test_a_negative_top_k_is_a_400_naming_it(gw):  # noqa: F811
    r = httpx.post(gw.url + "/v1/messages", timeout=15, json={"model": "viaopenai", "max_tokens": 20, **CHAT,
                                                               "top_k": -1})
    assert r.status_code == 400 and "top_k" in r.text, r.text


def test_no_top_k_sends_none(gw, fakes):  # noqa: F811
    """Guard (right before too): a request without it sends none (the server's own default stands)."""
    oa, _ = fakes
    _post(gw, "/v1/messages", {"model": "viaopenai", "max_tokens": 20, **CHAT})
    assert "top_k" not in oa.last_request.json


@pytest.mark.parametrize(("field", "value"), [("top_k", 40), ("min_p", 0.05)])
async def test_openais_refusal_of_top_k_leaves_it_out_and_says_so(tmp_path: Path, field: str, value: float) -> None:
    """min_p (test_min_p_repeat_penalty.py) is refused in the same words and handled alike."""
    refusal = (field, 400, lambda _: {"error": {"message": f"Unrecognized request argument supplied: {field}",
                                                "type": "invalid_request_error", "param": None, "code": None}})
    asked = ChatRequest([Message("user", "Say hello")], **{field: value})
    with RefusingServer([refusal]) as server, OpenAIServer(reply_text="backup answer") as backup:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, (field,))
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [[field], [], []]
    note = f"{field} left out: the model's server refuses it"
    assert rows == [("primary", "ok", None, note), ("primary", "ok", None, note)]
