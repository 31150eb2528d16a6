"""A text near or past an embedding model's context, as RAG clients send it, with the real ``ollama`` and ``openai``
clients, on a fake of Ollama's ``/api/embed``.

Sources: Ollama's docs/api.md, "Generate Embeddings": ``truncate`` "truncates the end of each input to fit within
context length. Returns error if false and context length is exceeded. Defaults to true"; the error clients meet is
"the input length exceeds the context length" (jeastham1993/zettel-system, INFRA-001, through OllamaSharp;
ollama/ollama#14186). llama-server answers a text past its physical batch with a 500 ``server_error`` "input
(596 tokens) is too large to process. increase the physical batch size (current batch size: 512)"
(containers/ramalama#2852, ggml-org/llama.cpp#7389, gpustack/gpustack#472). RAG chunkers size chunks to the model's
context (nomic-embed-text: 2,048 at Ollama's default ``num_ctx``), and an embedding has no answer to leave room for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import ollama
import openai
import pytest

from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

DIMS = 8
CONTEXT = 2048


def _words(n: int) -> str:
    return " ".join(f"llama{i % 97}" for i in range(n))


@pytest.fixture(scope="module")
def server() -> Iterator[OllamaServer]:
    with OllamaServer(embed_models=["nomic-embed-text"], embedding_dims=DIMS) as ol:
        yield ol


@pytest.fixture
def gw(tmp_path, server) -> Iterator[GatewayServer]:
    server.reset()
    models = {"nomic": {"provider": "ollama", "endpoint": server.url, "model": "nomic-embed-text",
                        "context": CONTEXT},
              "nomic-undeclared": {"provider": "ollama", "endpoint": server.url, "model": "nomic-embed-text"}}
    config = make_config(models, {"embed": {"primary": "nomic"}, "undeclared": {"primary": "nomic-undeclared"}},
                         log={"path": str(tmp_path / "log.db")}, defaults={"retries": {"attempts": 0}})
    with GatewayServer(config) as gw:
        yield gw


def test_ollamas_truncate_false_is_passed_on_and_its_400_reaches_the_client(gw, server):
    """``ollama.embed(..., truncate=False)`` asks for an error rather than vectors of a cut text (a RAG ingest that
    would rather re-chunk than index half a page). ``truncate`` was dropped: Ollama cut the text and the client got
    vectors of part of it, silently. Now it is passed on, and Ollama's 400 reaches the client in Ollama's shape; a
    model whose context is declared refuses it before asking, as the server would."""
    client = ollama.Client(host=gw.url, timeout=30)
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="undeclared", input=_words(CONTEXT + 500), truncate=False)
    assert err.value.status_code == 400
    assert "the input length exceeds the context length" in err.value.error
    assert server.requests_to("/api/embed")[-1].json["truncate"] is False
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="embed", input=_words(CONTEXT + 500), truncate=False)
    assert err.value.status_code == 400 and "is longer than its context of 2048 tokens" in err.value.error
    assert len(server.requests_to("/api/embed")) == 1


def test_without_truncate_ollama_cuts_a_long_text_as_it_does(gw, server):
    """``truncate`` unset is Ollama's default (true): the server cuts the text to its context and answers; the gateway
    refused it before asking ("does not fit its context"), where Ollama itself would have answered."""
    client = ollama.Client(host=gw.url, timeout=30)
    got = client.embed(model="embed", input=_words(CONTEXT + 500))
    assert len(got.embeddings) == 1 and len(got.embeddings[0]) == DIMS
    assert "truncate" not in server.requests_to("/api/embed")[-1].json


@pytest.fixture
def llama_gw(tmp_path) -> Iterator[tuple[GatewayServer, OpenAIServer]]:
    with OpenAIServer(embedding_dims=DIMS) as llama:
        models = {"llama-embed": {"provider": "openai", "endpoint": llama.url, "model": "nomic-embed-text-v1.5",
                                  "context": CONTEXT}}
        config = make_config(models, {"embed": {"primary": "llama-embed"}}, log={"path": str(tmp_path / "log.db")},
                             defaults={"retries": {"attempts": 2, "backoff": 0.01},
                                       "cooldown": {"failures": 1, "seconds": 30}})
        with GatewayServer(config) as gw:
            yield gw, llama


def test_a_text_too_long_for_llama_server_is_the_clients_400_and_cools_nothing(llama_gw):
    """llama-server's 500 for a chunk past its batch was a server_error: asked twice more with the same text, then
    the model cooled — its chats and every other chunk of the ingest skipped for the cooldown — and the client got a
    503 "try again", which fails the same way. It is the text's fault: one call, a 400 saying so, nothing cools."""
    gw, llama = llama_gw
    said = ("input (596 tokens) is too large to process. increase the physical batch size (current batch size: "
            "512)")
    llama.push(Fault.raw(500, json.dumps({"error": {"code": 500, "message": said, "type": "server_error"}}),
                         headers={"content-type": "application/json"}), times=3)  # the same text fails alike
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "embed", "input": "a long chunk"}, timeout=30)
    assert r.status_code == 400, r.text
    assert "too large to process" in r.json()["error"]["message"]
    assert len(llama.requests_to("/v1/embeddings")) == 1
    assert {s.name: s.state for s in gw.router.model_states()}["llama-embed"] == "available"
    llama.reset()
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "embed", "input": "a short chunk"}, timeout=30)
    assert r.status_code == 200, r.text


def test_a_chunk_that_fits_the_context_is_embedded(llama_gw):
    """A chunk of about 1,780 tokens for a 2,048-token model that never cuts (llama-server): it was skipped before any
    call — "does not fit its context of 2048 tokens with 512 left for the answer" — a chat's answer room held back
    from vectors, which have none; the client got a 400 for a chunk its model takes. Now the server is asked."""
    gw, llama = llama_gw
    text = _words(900)
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=30) as sdk:
        got = sdk.embeddings.create(model="embed", input=[text, "short"])
    assert len(got.data) == 2
    assert all(abs(a - b) < 1e-5 for a, b in zip(got.data[0].embedding, fake_vector(text, DIMS), strict=True))
    assert len(llama.requests_to("/v1/embeddings")) == 1
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=30) as sdk, \
            pytest.raises(openai.BadRequestError) as err:
        sdk.embeddings.create(model="embed", input=[_words(1200)])  # past the context: refused, not sent
    assert "is longer than its context of 2048 tokens" in str(err.value)
    assert len(llama.requests_to("/v1/embeddings")) == 1
