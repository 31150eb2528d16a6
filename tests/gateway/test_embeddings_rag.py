"""Embeddings as RAG pipelines use them (LangChain, LlamaIndex, Open WebUI, Continue), end to end on fakes of the real
servers: a model's refusal of a kind of request, token-array inputs, a large batch's time, and fallback between
models whose vectors are not comparable.

Sources the assertions follow:

- A chat asked of an embedding model: Ollama's 400 '"nomic-embed-text" does not support chat' (routes.go's capability
  check), llama-server started with ``--embeddings``: 501 "This server does not support completions. Start it without
  `--embeddings`"; litellm#14403 met "nomic-embed-text does not support generate" on an embeddings fallback.
- Token arrays: OpenAI's ``input`` is a string, a list of strings, a list of integers, or a list of lists of integers;
  LangChain's ``OpenAIEmbeddings`` (``check_embedding_ctx_length=True``, its default) tokenizes with tiktoken and sends
  lists of ids (danny-avila/rag_api#161, huggingface/text-embeddings-inference#273); Ollama answers them
  "invalid input type" (ollama/ollama#5907).
- A batch's time grows with its text (cbcoutinho/nextcloud-mcp-server#1347: Ollama embeds a batch serially);
  LiteLLM bounds an embedding call by one per-call timeout, whatever its size.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.embeddings_kit import TIMEOUTS, gateways
from tests.gateway.embeddings_kit import attempts as _attempts
from tests.gateway.embeddings_kit import chat as _chat
from tests.gateway.embeddings_kit import close_to as _close
from tests.gateway.embeddings_kit import embed as _embed
from tests.helpers import make_config

DIMS = 8
#: llama-server's nomic-embed-text-v1.5 GGUF and Ollama's nomic-embed-text: one model under two names
SAME = {"llama-embed": {"embedding_space": "nomic-v1.5"}, "nomic": {"embedding_space": "nomic-v1.5"}}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with OpenAIServer(embedding_dims=DIMS) as llama, OpenAIServer(embedding_dims=DIMS) as twin, \
            OllamaServer(embed_models=["nomic-embed-text", "bge-m3"], chat_models=["llama3.2"],
                         embedding_dims=DIMS) as ol:
        yield {"llama": llama, "twin": twin, "ollama": ol}


def _config(tmp_path, s: dict[str, Any], **extra: Any):
    models = {
        "nomic": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "nomic-embed-text"},
        "bge": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "bge-m3"},
        "llama-embed": {"provider": "openai", "endpoint": s["llama"].url, "model": "nomic-embed-text-v1.5"},
        "twin": {"provider": "openai", "endpoint": s["twin"].url, "model": "nomic-embed-text-v1.5"},
        "nomic-latest": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "nomic-embed-text:latest"},
    }
    for name, fields in extra.items():
        models[name].update(fields)
    agents = {
        "embed": {"primary": "nomic"},
        "llama": {"primary": "llama-embed"},
        "tokens": {"primary": "nomic", "fallbacks": ["llama-embed"]},
        "two-servers": {"primary": "llama-embed", "fallbacks": ["twin"]},
        "mixing": {"primary": "llama-embed", "fallbacks": ["bge"]},
        "declared": {"primary": "llama-embed", "fallbacks": ["nomic"]},
        "latest": {"primary": "nomic", "fallbacks": ["nomic-latest"]},
    }
    defaults = {"timeouts": TIMEOUTS, "retries": {"attempts": 0}, "cooldown": {"failures": 1, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def make_gw(tmp_path, servers):
    with gateways(servers.values()) as start:
        yield lambda **extra: start(_config(tmp_path, servers, **extra))


# -- 1. a refusal of a kind of request does not cool the kind the model serves --------------------------------------

def test_a_chat_asked_of_an_ollama_embedding_model_leaves_its_embeddings_served(make_gw, servers):
    """Open WebUI lists every model for chat, the embedding model among them: a chat asked of ``nomic-embed-text``
    is refused ('"nomic-embed-text" does not support chat', Ollama's capability check). It cooled the model as
    model_missing for cooldown.max_seconds, and the embeddings it serves well were skipped as cooling_down. Now the
    chat is refused (not this model's kind), nothing cools, the next chat is refused without asking Ollama again,
    and the embeddings are answered."""
    gw = make_gw()
    assert _chat(gw, "embed").status_code >= 400
    assert _chat(gw, "embed").status_code >= 400
    assert len(servers["ollama"].requests_to("/api/chat")) == 1  # learned: not asked again
    r = _embed(gw, "embed", "a passage")
    assert r.status_code == 200, r.text
    assert _close(r.json()["data"][0]["embedding"], fake_vector("a passage", DIMS))
    assert _attempts(gw) == [("nomic", "ok", None, None)]
    assert {s.name: s.state for s in gw.router.model_states()}["nomic"] == "available"


def test_a_chat_asked_of_llama_server_started_for_embeddings_leaves_its_embeddings_served(make_gw, servers):
    """llama-server started with ``--embeddings`` refuses completions with a 501 ``not_supported_error``
    (server.cpp handle_completions_impl): the model cooled as model_missing, and its embeddings waited out the
    cooldown. Now its embeddings are answered at once."""
    gw = make_gw()
    said = "This server does not support completions. Start it without `--embeddings`"
    servers["llama"].push(Fault.raw(501, json.dumps({"error": {"code": 501, "message": said,
                                                               "type": "not_supported_error"}}),
                                    headers={"content-type": "application/json"}))
    r = _chat(gw, "llama")
    assert r.status_code >= 400 and "--embeddings" in r.text
    r = _embed(gw, "llama", ["one", "two"])
    assert r.status_code == 200, r.text
    assert _attempts(gw) == [("llama-embed", "ok", None, None)]


# -- 2. token arrays ---------------------------------------------------------------------------------------------------

def test_token_arrays_go_on_to_an_openai_compatible_server(make_gw, servers):
    """LangChain's ``OpenAIEmbeddings`` with its default ``check_embedding_ctx_length=True`` tokenizes each text with
    tiktoken and posts ``input`` as lists of ids (langchain_openai embeddings/base.py ``_get_len_safe_embeddings``;
    rag_api#161). They were refused with a 400. OpenAI-compatible servers take them (OpenAI, vLLM, llama-server's
    tokenized prompts): passed on as they came, a vector each, in order; one list of ids is one input."""
    gw = make_gw()
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as sdk:
        got = sdk.embeddings.create(model="llama", input=[[9906, 1917], [15339, 11, 1917, 0]],
                                    encoding_format="float")
    assert [d.index for d in got.data] == [0, 1]
    assert _close(got.data[1].embedding, fake_vector(str([15339, 11, 1917, 0]), DIMS))
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["input"] == [[9906, 1917], [15339, 11, 1917, 0]]
    r = _embed(gw, "llama", [9906, 1917.0])  # JSON Schema's integer: a number whose fraction is zero
    assert r.status_code == 200 and len(r.json()["data"]) == 1
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["input"] == [[9906, 1917]]


@pytest.mark.skipif(importlib.util.find_spec("langchain_openai") is None, reason="langchain-openai not installed")
def test_langchains_openai_embeddings_with_its_default_tokenizing(make_gw, servers, monkeypatch):
    """LangChain's ``OpenAIEmbeddings`` as people leave it (``check_embedding_ctx_length=True``): its real code
    tokenizes each text (tiktoken, cl100k_base for a model it does not know) and posts the ids. cl100k_base is
    downloaded at first use, which cannot happen here: a byte-level tiktoken ``Encoding`` (id = byte) stands in for
    it — the request's shape is LangChain's own. It was a 400 ("input is a list of token ids")."""
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    by_bytes = tiktoken.Encoding(name="bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)},
                                 special_tokens={})
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: by_bytes)
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda name: by_bytes)
    gw = make_gw()
    emb = OpenAIEmbeddings(model="llama", base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    docs = emb.embed_documents(["alpha", "beta gamma"])
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["input"] == [list(b"alpha"), list(b"beta gamma")]
    assert len(docs) == 2 and all(abs(a - b) < 1e-5 for a, b in zip(docs[1], fake_vector(str(list(b"beta gamma")),
                                                                                        DIMS), strict=True))


def test_token_arrays_are_not_sent_to_ollama_and_the_chain_moves_on(make_gw, servers):
    """Ollama's API takes text only: ids answer 400 "invalid input type" (ollama/ollama#5907). They cannot be turned
    back into the text either: they are the client's tokenizer's (tiktoken's), not the model's. So an Ollama model
    refuses the attempt with what to do (nothing cools), the next model that takes ids answers, and a chain of
    Ollama models alone is a 400 saying so."""
    gw = make_gw(**SAME)
    r = _embed(gw, "tokens", [[9906, 1917]])
    assert r.status_code == 200 and r.json()["model"] == "llama-embed"
    assert servers["ollama"].requests_to("/api/embed") == []
    r = _embed(gw, "embed", [[9906, 1917]])
    assert r.status_code == 400
    assert "takes text only" in r.text and "check_embedding_ctx_length=False" in r.text
    assert {s.name: s.state for s in gw.router.model_states()}["nomic"] == "available"
    assert _embed(gw, "embed", "text").status_code == 200


def test_one_input_of_more_token_ids_than_a_request_has_inputs_is_one_input(make_gw, servers):
    """The OpenAI cookbook's "Embedding texts that are longer than the model's maximum context length"
    (openai/openai-cookbook examples/Embedding_long_inputs.ipynb) truncates a text to 8,191 tiktoken ids and posts
    them as ``input`` — one flat list of integers, one input, which OpenAI embeds (its output: a 1536-long vector).
    The list's length was counted as inputs first: "input: 8,191 texts, more than the 2048 one request may carry"."""
    gw = make_gw()
    r = _embed(gw, "llama", [9906] * 8191)
    assert r.status_code == 200 and len(r.json()["data"]) == 1, r.text
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["input"] == [[9906] * 8191]


def test_token_ids_written_as_whole_floats_reach_the_server_as_integers(make_gw, servers):
    """The gateway takes ``7.0`` as the token id 7 (JSON Schema's integer: a number whose fraction is zero), but a
    list of such lists went on as written — ``[[9906, 1917.0]]`` — to llama-server, whose tokenizer takes integers only
    (ggml-org/llama.cpp tools/server/utils.hpp ``json_is_array_of_numbers``: ``e.is_number_integer()``; anything else
    is "element of "prompt" must be a string, an list of tokens, or a list of mixed strings & tokens"). A single list
    of ids was converted; the list of lists was not. Both now reach the server as the integers they were taken as."""
    gw = make_gw()
    r = _embed(gw, "llama", [[9906, 1917.0], [42.0]])
    assert r.status_code == 200, r.text
    sent = json.loads(servers["llama"].requests_to("/v1/embeddings")[-1].body)["input"]
    assert sent == [[9906, 1917], [42]] and all(type(i) is int for ids in sent for i in ids), sent


@pytest.mark.parametrize(("value", "words"), [
    ([[]], "input[0]: an empty list of token ids"),
    ([[1, -2]], "input[0][1]: a token id is a whole number"),
    ([[1, 2.5]], "input[0][1]: a token id is a whole number"),
    ([[1, True]], "input[0][1]: a token id is a whole number"),
    ([[1] * 150_001, [2] * 150_000], "300,001 token ids in all"),
])
def test_bad_token_arrays_are_a_400_naming_the_item(make_gw, servers, value, words):
    gw = make_gw()
    r = _embed(gw, "llama", value)
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    assert servers["llama"].requests_to("/v1/embeddings") == []


# -- 3. a large batch gets the time its size needs -------------------------------------------------------------------

def test_a_large_batch_is_given_time_for_its_size(make_gw, servers):
    """A RAG ingest sends big batches (LangChain's ``chunk_size`` 1,000 texts; Open WebUI's batch setting), and a CPU
    embedder reads all of them before it answers: the vectors are the first and only chunk. They had to come within
    ``timeouts.first_token`` (0.6 s here), so the 1,000-text batch timed out and fell back every time. The bound is
    now first_token for each 2,048 tokens of input (15,940 estimated here: 8 × 0.6 s), the request's total above it; one
    text still waits first_token alone."""
    gw = make_gw()
    batch = [f"passage {i} of the handbook, chapter {i % 17}, on the care of llamas" for i in range(1000)]
    servers["llama"].push(Fault.delay(1.5))
    r = _embed(gw, "llama", batch)
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 1000 and _attempts(gw)[0][1] == "ok"
    servers["llama"].push(Fault.delay(1.5))
    r = _embed(gw, "llama", "one text")
    assert r.status_code == 503 and _attempts(gw)[0][2] == "first_token_timeout"


# -- 4. no silent mixing of vector spaces -----------------------------------------------------------------------------

def test_a_fallback_to_another_embedding_model_is_refused_and_said(make_gw, servers):
    """A chain [nomic-embed-text-v1.5, bge-m3]: when the first failed, bge-m3 answered — 200, vectors of another
    model of the same width, written into an index built with the first: search then finds the wrong passages,
    silently. The other model is now skipped (the row says why) and the client is told to retry (503)."""
    gw = make_gw()
    servers["llama"].push(Fault.status(500))
    r = _embed(gw, "mixing", "a query")
    assert r.status_code == 503, r.text
    attempts = _attempts(gw)
    assert [a[:3] for a in attempts] == [("llama-embed", "fallback", "server_error"),
                                        ("bge", "skipped", "unavailable")]
    assert "another space than llama-embed's" in (attempts[1][3] or "")
    assert servers["ollama"].requests_to("/api/embed") == []
    r = _embed(gw, "mixing", "a query")  # the first cooling down: still not the other model's vectors
    assert r.status_code == 503 and [a[:3] for a in _attempts(gw)][1] == ("bge", "skipped", "unavailable")


def test_the_same_model_on_another_server_or_a_declared_space_stands_in(make_gw, servers):
    """The same model on two servers (litellm#14403's "second instance of ollama") gives the same vectors: it
    stands in. Two names of one model (llama-server's nomic-embed-text-v1.5 GGUF, Ollama's nomic-embed-text) stand in
    once the config gives them one ``embedding_space``; the row says whose vectors were given in whose place."""
    gw = make_gw(**SAME)
    servers["llama"].push(Fault.status(500))
    assert _embed(gw, "two-servers", "x").json()["model"] == "twin"
    assert _attempts(gw)[1] == ("twin", "ok", None, None)
    r = _embed(gw, "declared", "x")  # llama-embed cooling down
    assert r.status_code == 200 and r.json()["model"] == "nomic"
    assert _attempts(gw)[-1] == ("nomic", "ok", None,
                                 "vectors in place of llama-embed's: the same embedding_space 'nomic-v1.5'")


# -- 5. the context check weighs token ids as the tokens they are ------------------------------------------------------

def test_token_ids_past_a_models_declared_context_skip_it_as_a_text_would(make_gw, servers):
    """An input too long for an embedding model's context is refused by the server — llama-server answers 500 "input
    (596 tokens) is too large to process. increase the physical batch size" (containers/ramalama#2852; gpustack#472: a
    512-token model, "reduce the cutting size of the document"), a server error that cooled a healthy model. A
    declared ``context`` skips such a model before it is asked, by the size of the largest input. Token ids were
    weighed by their label in the log ("[3,000 token ids]", a few tokens): 3,000 ids were sent to a 2,048-token model.
    Now they count as the 3,000 tokens they are, and the same model on another server without that bound answers."""
    gw = make_gw(**{"llama-embed": {"context": 2048}})
    r = _embed(gw, "two-servers", [[17] * 3000])
    assert r.status_code == 200 and r.json()["model"] == "twin", r.text
    attempts = _attempts(gw)
    assert [a[:3] for a in attempts] == [("llama-embed", "skipped", "bad_request"), ("twin", "ok", None)]
    assert "about 3000 tokens" in (attempts[0][3] or "")
    assert servers["llama"].requests_to("/v1/embeddings") == []
    r = _embed(gw, "two-servers", [[17] * 1000, "a short text"])  # within the context: asked
    assert r.status_code == 200 and r.json()["model"] == "llama-embed", r.text


def test_token_ids_that_fill_a_models_context_exactly_are_sent_to_it(make_gw, servers):
    """Token ids are the tokens the model reads, counted exactly: OpenAI's reference for ``input`` — "The input must not
    exceed the max input tokens for the model (8192 tokens for all embedding models)" (platform.openai.com/docs/
    api-reference/embeddings/create) — takes an input of as many ids as the model's context, and the OpenAI cookbook
    (examples/Embedding_long_inputs.ipynb) cuts its chunks to 8,191. The context check added a chat template's four
    markers to them: 2,048 ids for a 2,048-token model were "about 2052 tokens", the model skipped and its twin asked
    (or, with no twin, a 400 for an input the model takes)."""
    gw = make_gw(**{"llama-embed": {"context": 2048}})
    r = _embed(gw, "two-servers", [[17] * 2048, [18] * 5])
    assert r.status_code == 200 and r.json()["model"] == "llama-embed", r.text
    assert [a[:3] for a in _attempts(gw)] == [("llama-embed", "ok", None)]
    assert servers["llama"].requests_to("/v1/embeddings")[-1].json["input"][0] == [17] * 2048


def test_the_same_model_under_its_latest_tag_stands_in_without_a_note_of_a_declared_space(make_gw, servers):
    """Ollama's API docs (docs/api.md, "Model names"): "The tag is optional and, if not provided, will default to
    `latest`": ``nomic-embed-text`` and ``nomic-embed-text:latest`` are one model, and one stands in for the other with
    no ``embedding_space`` in the config. The row said "vectors in place of nomic's: the same embedding_space
    'nomic-embed-text'" — a space nobody declared: the rule that let it stand in (router/embedding.py
    ``interchangeable``: the model id, ``:latest`` and case aside) and the one that wrote the note (the raw id) were
    two. The row now says nothing, as for the same model id on another server."""
    gw = make_gw()
    servers["ollama"].push(Fault.status(500))
    r = _embed(gw, "latest", "x")
    assert r.status_code == 200 and r.json()["model"] == "nomic-latest", r.text
    assert _attempts(gw)[-1] == ("nomic-latest", "ok", None, None)
