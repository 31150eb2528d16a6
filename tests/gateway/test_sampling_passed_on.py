"""A client's ``seed`` and ``top_p`` reach the model's server. ``seed``: OpenAI's ``seed`` on chat and text completions
("If specified, our system will make a best effort to sample deterministically, such that repeated requests with the
same seed and parameters should return the same result": platform.openai.com/docs/api-reference/chat/create; the
cookbook's "Reproducible outputs with the seed parameter"), Ollama's ``options.seed`` (docs.ollama.com/modelfile,
"seed"), Mistral FIM's ``random_seed``. llama-server, vLLM and Ollama's ``/v1`` read ``seed`` in the OpenAI body;
Ollama's ``/api/chat`` in ``options``. Was: dropped at the gateway — an evaluation's repeatable run (lm-eval's,
promptfoo's seeded runs) got a new sample every time, with no word of it; each test but the guard failed on the old
code (a seed past OpenAI's 64-bit integer was taken too, and dropped).

``top_p`` (nucleus sampling: "An alternative to sampling with temperature … 0.1 means only the tokens comprising the
top 10% probability mass are considered", the same API reference; Anthropic's Messages API takes it 0-1; Ollama's
``options.top_p``, docs.ollama.com/modelfile) was dropped the same way on every API here, whatever the model; it is
passed on to OpenAI-compatible servers, Ollama and llama.cpp (not to Anthropic's API, whose newer models refuse it
beside a temperature). Its tests failed on the old code.

OpenAI's ``frequency_penalty`` and ``presence_penalty`` ("Number between -2.0 and 2.0. Positive values penalize new
tokens based on …", the same reference; LangChain's ``OpenAI`` LLM sends both, 0 by default; Ollama's options of the
same names) likewise: dropped before, passed on now; their tests failed on the old code.

And a ``json_schema``'s ``strict`` goes on as the client said it (below).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import OllamaServer, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[OpenAIServer, OllamaServer]]:
    with OpenAIServer() as oa, OllamaServer() as ol:
        yield oa, ol


@pytest.fixture
def gw(tmp_path, fakes) -> Iterator[GatewayServer]:
    oa, ol = fakes
    models = {"oa": {"provider": "openai", "endpoint": oa.url, "model": "qwen2.5-7b"},
              "ol": {"provider": "ollama", "endpoint": ol.url, "model": "qwen2.5:7b"}}
    config = make_config(models, {"viaopenai": {"primary": "oa"}, "viaollama": {"primary": "ol"}},
                         defaults={"retries": {"attempts": 0}}, log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as server:
        yield server


def _post(gw: GatewayServer, path: str, body: dict[str, Any]) -> httpx.Response:
    r = httpx.post(gw.url + path, json={"stream": False, **body}, timeout=15)
    assert r.status_code == 200, r.text
    return r


def test_chat_seed_reaches_an_openai_compatible_server_and_ollama(gw, fakes):
    oa, ol = fakes
    chat = {"messages": [{"role": "user", "content": "pick a number"}], "seed": 42}
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **chat})
    assert oa.last_request.json["seed"] == 42
    _post(gw, "/v1/chat/completions", {"model": "viaollama", **chat})
    assert ol.last_request.json["options"]["seed"] == 42


def test_text_completion_and_fim_seeds_reach_the_server(gw, fakes):
    oa, _ = fakes
    _post(gw, "/v1/completions", {"model": "viaopenai", "prompt": "1, 2, 3,", "seed": 7})
    assert oa.last_request.json["seed"] == 7
    _post(gw, "/v1/fim/completions", {"model": "viaopenai", "prompt": "def f(", "suffix": ")", "random_seed": 9})
    assert oa.last_request.json["seed"] == 9


def test_ollamas_options_seed_is_passed_on(gw, fakes):
    oa, ol = fakes
    _post(gw, "/api/chat", {"model": "viaopenai", "messages": [{"role": "user", "content": "hi"}],
                            "options": {"seed": 123}})
    assert oa.last_request.json["seed"] == 123
    _post(gw, "/api/generate", {"model": "viaollama", "prompt": "hi", "options": {"seed": 5}})
    assert ol.last_request.json["options"]["seed"] == 5


def test_no_seed_sends_none(gw, fakes):
    """Guard: a request without one sends none (the server's own default)."""
    oa, _ = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", "messages": [{"role": "user", "content": "hi"}]})
    assert "seed" not in oa.last_request.json


def test_a_seed_past_64_bits_is_a_400_naming_it(gw):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=15, json={
        "model": "viaopenai", "messages": [{"role": "user", "content": "hi"}], "seed": 2**64})
    assert r.status_code == 400 and r.json()["error"]["param"] == "seed", r.text


CHAT = {"messages": [{"role": "user", "content": "pick a word"}]}


def test_top_p_reaches_the_server_from_every_api(gw, fakes):
    oa, ol = fakes
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT, "top_p": 0.3})
    assert oa.last_request.json["top_p"] == 0.3
    _post(gw, "/v1/chat/completions", {"model": "viaollama", **CHAT, "top_p": 0.3})
    assert ol.last_request.json["options"]["top_p"] == 0.3
    _post(gw, "/v1/completions", {"model": "viaopenai", "prompt": "a, b,", "top_p": 0.4})
    assert oa.last_request.json["top_p"] == 0.4
    _post(gw, "/v1/responses", {"model": "viaopenai", "input": "pick a word", "top_p": 0.5})
    assert oa.last_request.json["top_p"] == 0.5
    _post(gw, "/v1/messages", {"model": "viaopenai", "max_tokens": 20, **CHAT, "top_p": 0.6})
    assert oa.last_request.json["top_p"] == 0.6
    _post(gw, "/api/chat", {"model": "viaopenai", **CHAT, "options": {"top_p": 0.7}})
    assert oa.last_request.json["top_p"] == 0.7


def test_a_top_p_past_one_is_a_400_naming_it(gw):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=15, json={"model": "viaopenai", **CHAT, "top_p": 1.5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_p", r.text


#: a schema valid only without strict mode: an optional property ("Only a subset of JSON Schema is supported when
#: strict is true": every property must be required — OpenAI's 400 "Invalid schema for response_format 'response': In
#: context=(…), 'required' is required to be supplied and to be an array including every key in properties. Missing
#: 'roles'", vercel/ai#6484; Dicklesworthstone/cass_memory_system#44)
LOOSE = {"type": "object", "properties": {"name": {"type": "string"}, "roles": {"type": "array",
                                                                             "items": {"type": "string"}}},
         "required": ["name"]}


@pytest.mark.parametrize(("given", "sent"), [(False, False), (None, False), (True, True)])
def test_json_schema_strict_is_passed_on_as_the_client_said(gw, fakes, given, sent):
    """``response_format.json_schema.strict`` (chat; OpenAI's default false) and ``text.format.strict`` (Responses).
    Was: always sent as true — a schema valid without strict mode was refused by OpenAI itself. The ``True`` cases are
    guards."""
    oa, _ = fakes
    spec: dict[str, Any] = {"name": "person", "schema": LOOSE}
    if given is not None:
        spec["strict"] = given
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT,
                                       "response_format": {"type": "json_schema", "json_schema": spec}})
    assert oa.last_request.json["response_format"]["json_schema"]["strict"] is sent
    _post(gw, "/v1/responses", {"model": "viaopenai", "input": "who?", "text": {"format": {"type": "json_schema",
                                                                                           **spec}}})
    assert oa.last_request.json["response_format"]["json_schema"]["strict"] is sent


def test_a_schema_from_an_api_without_strict_is_still_sent_strict(gw, fakes):
    """Guard: Ollama's ``format`` schema has no word on it: an OpenAI-compatible server is asked to follow it exactly,
    as before."""
    oa, _ = fakes
    _post(gw, "/api/chat", {"model": "viaopenai", **CHAT, "format": LOOSE})
    assert oa.last_request.json["response_format"]["json_schema"]["strict"] is True


def test_the_penalties_reach_the_server(gw, fakes):
    oa, ol = fakes
    penalties = {"frequency_penalty": 0.5, "presence_penalty": -0.25}
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT, **penalties})
    assert {k: oa.last_request.json[k] for k in penalties} == penalties
    _post(gw, "/v1/chat/completions", {"model": "viaollama", **CHAT, **penalties})
    assert {k: ol.last_request.json["options"][k] for k in penalties} == penalties
    _post(gw, "/v1/completions", {"model": "viaopenai", "prompt": "a, b,", **penalties})
    assert {k: oa.last_request.json[k] for k in penalties} == penalties
    _post(gw, "/api/chat", {"model": "viaopenai", **CHAT, "options": penalties})
    assert {k: oa.last_request.json[k] for k in penalties} == penalties
    _post(gw, "/v1/chat/completions", {"model": "viaopenai", **CHAT, "frequency_penalty": 0, "presence_penalty": 0})
    assert not {"frequency_penalty", "presence_penalty"} & set(oa.last_request.json)  # 0, the default: left out
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=15,
                   json={"model": "viaopenai", **CHAT, "presence_penalty": 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "presence_penalty", r.text
