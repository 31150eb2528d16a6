"""Embeddings through the gateway, end to end, with the clients people embed with, on fakes of the real servers.

Wire specs the assertions follow:

- OpenAI's "Create embeddings" (platform.openai.com/docs/api-reference/embeddings/create): ``input`` a string or a
  list (at most 2048, no empty string), ``encoding_format`` float or base64, ``dimensions``; the answer
  ``{object: "list", data: [{object: "embedding", index, embedding}], model, usage: {prompt_tokens, total_tokens}}``.
  The ``openai`` SDK asks for base64 unless told and decodes it (``embeddings.create``).
- Ollama's docs/api.md "Generate Embeddings" (``POST /api/embed``: ``input`` str or list → ``embeddings``,
  ``prompt_eval_count``) and its superseded "Generate Embedding" (``POST /api/embeddings``: ``prompt`` →
  ``embedding``), as the ``ollama`` Python client's ``embed`` and ``embeddings`` call them.
- Backends that do not embed, as they say so: llama-server without ``--embeddings`` (501 ``not_supported_error``,
  ggml-org/llama.cpp#14223), an Ollama chat model ("this model does not support embeddings", ollama/ollama#9742),
  Anthropic's API (no embeddings endpoint at all).
- Token arrays: LangChain's ``OpenAIEmbeddings`` sends tiktoken ids unless ``check_embedding_ctx_length=False``
  (danny-avila/rag_api#115; arm/metis#317: llama.cpp "Prompt contains invalid tokens"): test_embeddings_rag.py.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest

from modelyard.ledger import connect
from tests.fakes import AnthropicServer, Fault, OllamaServer, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

DIMS = 8


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with OpenAIServer(embedding_dims=DIMS) as llama, OpenAIServer(embeddings=False) as chat_llama, \
            OpenAIServer(embedding_dims=DIMS) as broken, \
            OllamaServer(embed_models=["nomic-embed-text"], embedding_dims=DIMS) as ol, \
            AnthropicServer(api_key=ANTHROPIC_KEY) as an:
        yield {"llama": llama, "chat_llama": chat_llama, "broken": broken, "ollama": ol, "anthropic": an}


def _config(tmp_path, s: dict[str, Any]):
    models = {
        # one model under two names (llama-server's GGUF, Ollama's tag): one space, so they stand in for each other
        "embed-llama": {"provider": "openai", "endpoint": s["llama"].url, "model": "nomic-embed-text-v1.5",
                        "embedding_space": "nomic-v1.5"},
        "embed-ollama": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "nomic-embed-text",
                         "embedding_space": "nomic-v1.5"},
        "chat-ollama": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "llama3.2"},
        "chat-llama": {"provider": "openai", "endpoint": s["chat_llama"].url, "model": "qwen"},
        "broken": {"provider": "openai", "endpoint": s["broken"].url, "model": "nomic-embed-text-v1.5"},
        "local": {"provider": "llamacpp"},
        "cloud": {"provider": "anthropic", "endpoint": s["anthropic"].url, "model": "claude-test",
                  "api_key_env": "GATEWAY_TEST_ANTHROPIC_KEY"},
    }
    agents = {
        "rag": {"primary": "embed-llama", "fallbacks": ["embed-ollama"]},
        "mixed": {"primary": "cloud", "fallbacks": ["chat-llama", "chat-ollama", "embed-ollama"]},
        "shaky": {"primary": "broken", "fallbacks": ["embed-llama"]},
        "chatty": {"primary": "cloud", "fallbacks": ["chat-llama", "chat-ollama"]},
        "embedded": {"primary": "local", "fallbacks": ["embed-ollama"]},
        "orchestrator": {"primary": "chat-llama", "consumers": ["rag", "chatty"]},
    }
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 3, "idle": 3, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def gw(tmp_path, servers, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    for server in servers.values():
        server.reset()
    with GatewayServer(_config(tmp_path, servers)) as server:
        yield server


@pytest.fixture
def sdk(gw) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as client:
        yield client


@pytest.fixture
def local(gw) -> ollama.Client:
    return ollama.Client(host=gw.url, timeout=15)


def _rows(gw: GatewayServer) -> list[dict[str, Any]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        cursor = conn.execute("SELECT agent, model, outcome, kind, tokens_in, tokens_out FROM requests ORDER BY ts")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
    finally:
        conn.close()


def _close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want, strict=True))


def test_the_openai_sdk_gets_float_vectors_in_order_with_usage(gw, servers, sdk):
    """Before: 404 "no endpoint POST /v1/embeddings"."""
    got = sdk.embeddings.create(model="rag", input=["first text", "second"], encoding_format="float")
    assert [d.index for d in got.data] == [0, 1] and got.object == "list"
    assert _close(got.data[0].embedding, fake_vector("first text", DIMS))
    assert _close(got.data[1].embedding, fake_vector("second", DIMS))
    assert got.model == "embed-llama" and got.usage.prompt_tokens == got.usage.total_tokens == 3
    sent = servers["llama"].requests_to("/v1/embeddings")[-1].json
    assert sent == {"model": "nomic-embed-text-v1.5", "input": ["first text", "second"]}
    assert _rows(gw) == [{"agent": "rag", "model": "embed-llama", "outcome": "ok", "kind": "embeddings",
                          "tokens_in": 3, "tokens_out": 0}]


def test_the_sdks_default_base64_decodes_to_the_same_vector(gw, sdk):
    """The SDK asks for base64 unless told (and decodes little-endian float32s): that must round-trip."""
    got = sdk.embeddings.create(model="model:embed-llama", input="hello world")
    assert _close(got.data[0].embedding, fake_vector("hello world", DIMS))
    raw = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": "x", "encoding_format": "base64"},
                     timeout=15).json()
    assert isinstance(raw["data"][0]["embedding"], str) and raw["data"][0]["object"] == "embedding"


def test_the_ollama_client_embeds_with_embed_and_the_legacy_embeddings(gw, servers, local):
    """Before: 404 at /api/embed and /api/embeddings."""
    got = local.embed(model="embed-ollama", input=["why is the sky blue?", "grass"])
    assert len(got.embeddings) == 2 and _close(list(got.embeddings[1]), fake_vector("grass", DIMS))
    assert got.prompt_eval_count == 6 and got.model == "embed-ollama"
    one = local.embed(model="embed-ollama:latest", input="why is the sky blue?")
    assert _close(list(one.embeddings[0]), fake_vector("why is the sky blue?", DIMS))
    legacy = local.embeddings(model="rag", prompt="llamas")
    assert _close(list(legacy.embedding), fake_vector("llamas", DIMS))
    sent = servers["ollama"].requests_to("/api/embed")[0].json
    assert sent["input"] == ["why is the sky blue?", "grass"] and sent["model"] == "nomic-embed-text"


def test_an_empty_ollama_input_loads_without_routing(gw, servers, local):
    """Ollama answers an empty input with no vectors (its way to load the model); nothing is sent upstream."""
    assert local.embed(model="embed-ollama", input=[]).embeddings == []
    assert local.embeddings(model="embed-ollama", prompt="").embedding == []
    r = httpx.post(gw.url + "/api/embed", json={"model": "embed-ollama"}, timeout=15)
    assert r.status_code == 200 and r.json() == {"model": "embed-ollama", "embeddings": []}
    assert servers["ollama"].requests_to("/api/embed") == [] and _rows(gw) == []


def test_models_that_cannot_embed_are_refused_and_the_chain_moves_on(gw, servers, sdk):
    """Anthropic (no endpoint), llama-server without --embeddings (501) and an Ollama chat model (its 500 words)
    refuse as bad_request: the chain reaches the model that embeds, and none of them is cooled down."""
    for _ in range(6):  # past cooldown.failures (5): a refusal must not count against the model's health
        got = sdk.embeddings.create(model="mixed", input="text", encoding_format="float")
        assert got.model == "embed-ollama" and _close(got.data[0].embedding, fake_vector("text", DIMS))
    routed = gw.router.model_states()
    assert {s.name: s.state for s in routed if s.name in ("cloud", "chat-llama", "chat-ollama")} == \
        {"cloud": "available", "chat-llama": "available", "chat-ollama": "available"}
    assert servers["anthropic"].requests == []  # refused before any call
    record = _rows(gw)[-1]
    assert record["outcome"] == "fallback" and record["kind"] == "embeddings"
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        reasons = [tuple(r) for r in conn.execute(
            "SELECT model, outcome, reason FROM attempts WHERE request_id = (SELECT id FROM requests ORDER BY ts "
            "DESC LIMIT 1) ORDER BY seq")]
    finally:
        conn.close()
    assert reasons == [("cloud", "fallback", "bad_request"), ("chat-llama", "fallback", "bad_request"),
                       ("chat-ollama", "fallback", "bad_request"), ("embed-ollama", "ok", None)]


def test_the_embedded_model_refuses_to_embed_and_the_next_model_answers(gw):
    """The in-process llama.cpp model is loaded to generate; embedding needs a second copy (+738 MB here): it refuses
    the attempt, with why, and nothing is loaded for it."""
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "embedded", "input": "x"}, timeout=15)
    assert r.status_code == 200 and r.json()["model"] == "embed-ollama"
    assert "local fallback bad_request" in r.headers["x-modelyard-route"]
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        detail = conn.execute("SELECT detail FROM attempts WHERE model = 'local'").fetchone()[0]
    finally:
        conn.close()
    assert "the embedded llama.cpp model is loaded to generate" in detail


def test_a_chain_that_cannot_embed_is_a_400_in_each_clients_shape(gw, sdk, local):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.embeddings.create(model="chatty", input="text")
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "rejected_by_models"
    assert "cannot embed" in body["message"] and "--embeddings" in body["message"]
    with pytest.raises(ollama.ResponseError) as failed:
        local.embed(model="chatty", input="text")
    assert failed.value.status_code == 400 and "does not support embeddings" in failed.value.error


BROKEN = {
    "garbage": Fault.raw(200, b"\x00\x01 not json at all", headers={"content-type": "application/json"}),
    "html": Fault.raw(200, b"<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}),
    "error_json_in_200": Fault.raw(200, json.dumps({"error": {"message": "CUDA out of memory",
                                                              "type": "server_error"}}),
                                   headers={"content-type": "application/json"}),
    "one_vector_short": Fault.raw(200, json.dumps({"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}), headers={"content-type": "application/json"}),
    "nan": Fault.raw(200, '{"data": [{"index": 0, "embedding": [NaN, 1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}',
                     headers={"content-type": "application/json"}),
    "strings": Fault.raw(200, json.dumps({"data": [{"index": 0, "embedding": ["a", "b"]},
                                                   {"index": 1, "embedding": ["c", "d"]}]}),
                         headers={"content-type": "application/json"}),
    "cut_off": Fault.raw(200, b'{"object": "list", "data": [{"index": 0, "embedding": [0.1,',
                         headers={"content-type": "application/json"}, end="drop"),
    "status_500": Fault.status(500),
}


@pytest.mark.parametrize("fault", list(BROKEN))
def test_a_broken_embedder_falls_back_to_the_next_model(gw, servers, sdk, fault):
    """Whatever the primary sends — garbage, a proxy's page, an error inside a 200, a vector short, NaN, words, a
    body cut off, a 500 — the next model answers; never a 500 from the gateway."""
    servers["broken"].push(BROKEN[fault])
    got = sdk.embeddings.create(model="shaky", input=["a b", "c"], encoding_format="float")
    assert got.model == "embed-llama" and _close(got.data[1].embedding, fake_vector("c", DIMS))
    assert _rows(gw)[-1]["outcome"] == "fallback"


def test_dimensions_are_passed_on_and_cut_where_a_server_ignores_them(gw, servers, sdk):
    """Ollama's ``dimensions`` cuts the vectors; llama-server reads none and answers the model's width: its vectors
    are cut and scaled back to unit length here, so the client's store gets the length it asked for. More than
    the models have is a 400 saying so."""
    got = sdk.embeddings.create(model="rag", input="text", dimensions=4, encoding_format="float")
    head = fake_vector("text", DIMS)[:4]
    norm = sum(x * x for x in head) ** 0.5
    assert got.model == "embed-llama" and _close(got.data[0].embedding, [x / norm for x in head])
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["dimensions"] == 4
    with pytest.raises(openai.BadRequestError) as err:
        sdk.embeddings.create(model="rag", input="text", dimensions=DIMS * 2)
    assert "fewer than the 16 asked" in str(err.value.body)
    assert servers["ollama"].requests_to("/api/embed")[-1].json["dimensions"] == DIMS * 2


BAD = {
    "empty list": ({"input": []}, "input: an empty list"),
    "empty string": ({"input": ""}, "input: cannot be an empty string"),
    "missing": ({}, "input: Field required"),
    "a number": ({"input": 5}, "input: expected a string or a list of strings, not a int"),
    "mixed types": ({"input": ["ok", 3]}, "input[1]: expected a string, not a int"),
    "empty item": ({"input": ["ok", ""]}, "input[1]: an empty string"),
    "too many": ({"input": ["x"] * 2049}, "input: 2,049 texts, more than the 2048"),
    "negative token id": ({"input": [15339, -1]}, "input[1]: a token id is a whole number"),
    "empty token array": ({"input": [[15339], []]}, "input[1]: an empty list of token ids"),
    "zero dimensions": ({"input": "x", "dimensions": 0}, "dimensions"),
    "unknown format": ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_400_naming_the_field(gw, servers, case):
    body, words = BAD[case]
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", **body}, timeout=15)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]
    assert servers["llama"].requests_to("/v1/embeddings") == []


def test_bad_ollama_input_is_a_400_in_ollamas_shape(gw):
    r = httpx.post(gw.url + "/api/embed", json={"model": "embed-ollama", "input": [{"text": "x"}]}, timeout=15)
    assert r.status_code == 400 and r.json()["error"] == "input[0]: expected a string, not an object"
    r = httpx.post(gw.url + "/api/embeddings", json={"model": "embed-ollama", "prompt": ["x"]}, timeout=15)
    assert r.status_code == 400 and r.json()["error"] == "prompt: expected a string, not a list"
    r = httpx.post(gw.url + "/api/embed", json={"model": "nope", "input": "x"}, timeout=15)
    assert r.status_code == 404 and "does not exist" in r.json()["error"]


def test_auto_is_refused_for_embeddings(gw, servers):
    """``auto`` picks an agent for a conversation; an index's vectors must all come from one model."""
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "auto", "input": "x"}, timeout=15)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("model 'auto' lets the orchestrator")
    assert servers["chat_llama"].requests == [] and _rows(gw) == []


@pytest.mark.skipif(importlib.util.find_spec("langchain_openai") is None, reason="langchain-openai not installed")
def test_langchains_openai_embeddings(gw):
    """LangChain's ``OpenAIEmbeddings`` sends texts once told not to tokenize them with tiktoken (README)."""
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model="rag", base_url=gw.url + "/v1", api_key="unused", check_embedding_ctx_length=False,
                           max_retries=0)
    docs = emb.embed_documents(["alpha", "beta gamma"])
    assert len(docs) == 2 and _close(docs[1], fake_vector("beta gamma", DIMS))
    assert _close(emb.embed_query("alpha"), fake_vector("alpha", DIMS))


def test_a_base_url_without_v1_or_with_a_trailing_slash_reaches_the_endpoint(gw):
    """Clients join URLs by string: Continue's ``apiBase`` without ``/v1`` asks ``/embeddings``; a base ending in
    ``/`` asks ``//v1/embeddings`` (as for chat, gateway/app.py ``spelled``)."""
    for path in ("/embeddings", "/v1/embeddings/", "//v1/embeddings"):
        r = httpx.post(gw.url + path, json={"model": "rag", "input": "x", "encoding_format": "float"}, timeout=15)
        assert r.status_code == 200 and _close(r.json()["data"][0]["embedding"], fake_vector("x", DIMS)), (path, r.text)
