"""A client's ``min_p`` and ``repeat_penalty`` reach the model's server; Ollama's unload is answered as Ollama does.

Open WebUI puts the model parameters it has no OpenAI mapping for into an OpenAI chat body as they are
(open-webui backend/open_webui/utils/payload.py, ``apply_model_params_to_body_openai``), its "Min P" and "Repeat
Penalty" settings among them; Ollama's API takes ``options.min_p`` and ``options.repeat_penalty``
(docs.ollama.com/modelfile). The gateway dropped all of them: the model sampled at its server's defaults, with no word
said. Now passed on: Ollama's ``options``; llama-server reads ``min_p`` and ``repeat_penalty`` from an OpenAI body
(ggml-org/llama.cpp tools/server, ``params_from_json_cmpl``: ``json_value(data, "repeat_penalty", …)``), as LM Studio
does; vLLM's extra chat parameters are ``min_p`` and ``repetition_penalty``
(docs.vllm.ai/en/latest/serving/openai_compatible_server.html, "Extra Parameters for Chat API") — each ignores the
other's name, so the penalty goes under both. OpenAI's own API refuses either ("Unrecognized request argument
supplied: …", as it refuses top_k): left out, learned, and said in the routing log (providers/sampling.py;
min_p's refusal: test_top_k_passed_on.py).

``/api/generate`` or ``/api/chat`` with no prompt and ``keep_alive: 0`` is Ollama's "unload the model": Ollama answers
``done_reason: "unload"`` (ollama/ollama server/routes.go: ``req.KeepAlive.Duration == 0`` expires the runner and
answers ``DoneReason: "unload"``); the gateway answered ``"load"``. These tests failed on the old code; guards say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.types import ChatRequest, Message
from tests.fakes import OpenAIServer
from tests.gateway.test_sampling_passed_on import CHAT, _post, fakes, gw  # noqa: F401
from tests.integration.test_sampling_refused import REPLY, RefusingServer, _routed, _sent


def test_open_webuis_min_p_and_repeat_penalty_reach_an_openai_compatible_server_and_ollama(gw, fakes):  # noqa: F811
    oa, ol = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT, "min_p": 0.05, "repeat_penalty": 1.1})
    sent = oa.last_request.json
    assert (sent["min_p"], sent["repeat_penalty"], sent["repetition_penalty"]) == (0.05, 1.1, 1.1)
    _post(gw, "/v1/chat/completions", {"model": "viaollama", **CHAT, "min_p": 0.1, "repeat_penalty": 1.2})
    options = ol.last_request.json["options"]
    assert (options["min_p"], options["repeat_penalty"]) == (0.1, 1.2)


def test_text_completion_min_p_and_repeat_penalty_reach_the_server(gw, fakes):  # noqa: F811
    oa, _ = fakes
    _post(gw, "/v1/completions", {"model": "viaopenai", "prompt": "1, 2, 3,", "min_p": 0.2, "repeat_penalty": 1.3})
    assert (oa.last_request.json["min_p"], oa.last_request.json["repeat_penalty"]) == (0.2, 1.3)


def test_ollamas_options_min_p_and_repeat_penalty_are_passed_on(gw, fakes):  # noqa: F811
    oa, ol = fakes
    _post(gw, "/api/chat", {"model": "viaollama", **CHAT, "options": {"min_p": 0.05, "repeat_penalty": 1.15}})
    options = ol.last_request.json["options"]
    assert (options["min_p"], options["repeat_penalty"]) == (0.05, 1.15)
    _post(gw, "/api/generate", {"model": "viaopenai", "prompt": "hi", "options": {"min_p": 0, "repeat_penalty": 1}})
    assert (oa.last_request.json["min_p"], oa.last_request.json["repeat_penalty"]) == (0, 1)


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {"min_p": 1.5}, "min_p"),
    ("/v1/chat/completions", {"repeat_penalty": 0}, "repeat_penalty"),
    ("/v1/completions", {"min_p": -0.1}, "min_p"),
    ("/api/chat", {"options": {"min_p": 2}}, "options.min_p"),
    ("/api/chat", {"options": {"repeat_penalty": -1}}, "options.repeat_penalty"),
])
def test_out_of_range_is_a_400_naming_the_field(gw, path, body, param):  # noqa: F811
    ask = {"prompt": "1, 2,"} if path == "/v1/completions" else CHAT
    r = httpx.post(gw.url + path, timeout=15, json={"model": "viaopenai", "stream": False, **ask, **body})
    assert r.status_code == 400 and param in r.text, r.text


def test_none_given_sends_none(gw, fakes):  # noqa: F811
    """Guard (right before too): a request without them sends none (the server's own defaults stand)."""
    oa, ol = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT})
    assert not {"min_p", "repeat_penalty", "repetition_penalty"} & set(oa.last_request.json)
    _post(gw, "/api/chat", {"model": "viaollama", **CHAT})
    assert not {"min_p", "repeat_penalty"} & set(ol.last_request.json.get("options") or {})


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
@pytest.mark.parametrize("keep_alive", [0, "0", "0s"])
def test_keep_alive_0_with_nothing_to_say_is_an_unload(gw, path, keep_alive):  # noqa: F811
    r = _post(gw, path, {"model": "viaollama", "keep_alive": keep_alive})
    assert r.json()["done"] is True and r.json()["done_reason"] == "unload"


def test_a_load_stays_a_load(gw):  # noqa: F811
    """Guard (right before too): no keep_alive, or another, is still Ollama's "load"."""
    for extra in ({}, {"keep_alive": "5m"}, {"keep_alive": -1}):
        assert _post(gw, "/api/generate", {"model": "viaollama", **extra}).json()["done_reason"] == "load"


async def test_openais_refusal_of_both_penalty_names_leaves_them_out(tmp_path: Path) -> None:
    """OpenAI's API refuses one name at a time: each is learned in turn, and the second request sends neither."""
    def unrecognized(field: str) -> tuple[str, int, Any]:
        return field, 400, lambda _: {"error": {"message": f"Unrecognized request argument supplied: {field}",
                                                "type": "invalid_request_error", "param": None, "code": None}}
    asked = ChatRequest([Message("user", "Say hello")], repeat_penalty=1.1)
    with RefusingServer([unrecognized("repeat_penalty"), unrecognized("repetition_penalty")]) as server, \
            OpenAIServer(reply_text="backup answer") as backup:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, ("repeat_penalty", "repetition_penalty"))
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [["repeat_penalty", "repetition_penalty"], ["repetition_penalty"], [], []]
    note = "repeat_penalty, repetition_penalty left out: the model's server refuses them"
    assert rows == [("primary", "ok", None, note), ("primary", "ok", None, note)]
