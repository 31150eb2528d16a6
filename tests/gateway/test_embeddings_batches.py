"""An embeddings request past what one call to the model's server may carry goes in several calls, answered as one.

Hugging Face's text-embeddings-inference refuses a call of more inputs than its ``--max-client-batch-size`` (32 by
default) with a 422 ``{"error": "batch size 70 > maximum allowed batch size 32", "error_type": "Validation"}`` (its
router's ``format!``; huggingface/text-embeddings-inference#378 asks it to split, as here), the fake's
``max_client_batch``; Gemini's OpenAI-compatible endpoint at 100 (geldata/gel#9032). OpenAI's own bound: 2,048 inputs
and 300,000 tokens summed over them a call (platform.openai.com/docs/api-reference/embeddings/create).
Was: the texts of one request went to one model in one call — LangChain's default ``chunk_size`` of 1,000 (or
Open WebUI's batch) to such a server was refused, and the client got a 400 (the next model, in another vector space,
may not answer). Each test failed on the old code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelyard.ledger import connect
from modelyard.types import EmbedInput
from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

DIMS = 8
TEXTS = [f"passage number {i} about embeddings" for i in range(70)]


@pytest.fixture
def tei() -> Iterator[OpenAIServer]:
    with OpenAIServer(embedding_dims=DIMS, max_client_batch=32) as server:
        yield server


def _config(tmp_path, url: str, **model: Any) -> Any:
    models = {"tei": {"provider": "openai", "endpoint": url, "model": "bge-small-en-v1.5", **model}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 3, "idle": 3, "total": 20},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    return make_config(models, {"rag": {"primary": "tei"}}, defaults=defaults,
                       log={"path": str(tmp_path / "log.db")})


def _rows(gw: GatewayServer) -> list[tuple[Any, ...]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute("SELECT r.outcome, r.tokens_in, a.outcome, a.detail "
                                               "FROM requests r JOIN attempts a ON a.request_id = r.id")]
    finally:
        conn.close()


def test_a_batch_past_the_models_limit_goes_in_calls_and_comes_back_whole(tmp_path, tei):
    with GatewayServer(_config(tmp_path, tei.url, max_embed_batch=32)) as gw, \
            openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=15) as sdk:
        done = sdk.embeddings.create(model="rag", input=TEXTS, encoding_format="float")
        assert [d.index for d in done.data] == list(range(70))
        assert [d.embedding for d in done.data] == [pytest.approx(fake_vector(t, DIMS)) for t in TEXTS]
        sent = [r.json["input"] for r in tei.requests_to("/v1/embeddings")]
        assert [len(s) for s in sent] == [32, 32, 6] and [t for s in sent for t in s] == TEXTS
        words = sum(len(t.split()) for t in TEXTS)  # the fake server's count: a token a word
        assert done.usage.prompt_tokens == done.usage.total_tokens == words
        (row,) = _rows(gw)  # one row for the client's request, saying how it went
        assert row[:3] == ("ok", words, "ok")
        assert row[3] == "embedded in 3 calls of at most 32 texts and 300,000 tokens, one after another"


def test_a_bound_the_server_states_is_learned(tmp_path, tei):
    """No ``max_embed_batch`` in the config: text-embeddings-inference's 422 says its bound, the calls are asked again
    at once within it, and the next request goes so from the start."""
    with GatewayServer(_config(tmp_path, tei.url)) as gw:
        for _ in range(2):
            r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS}, timeout=15)
            assert r.status_code == 200, r.text
            assert [d["embedding"] for d in r.json()["data"]] == [pytest.approx(fake_vector(t, DIMS)) for t in TEXTS]
        sizes = [len(q.json["input"]) for q in tei.requests_to("/v1/embeddings")]
        assert sizes == [70, 32, 32, 6, 32, 32, 6]  # refused once, then within the bound
        notes = [row[3] for row in _rows(gw)]
        assert notes == ["embedded in 3 calls of at most 32 texts and 300,000 tokens, one after another (the "
                         "server's own bound, stated when it refused more)"] * 2


def test_geminis_stated_bound_is_read():
    """Gemini's OpenAI-compatible endpoint: 400 ``{"error": {"code": 400, "message": "* BatchEmbedContentsRequest.
    requests: at most 100 requests can be in one batch\\n", "status": "INVALID_ARGUMENT"}}`` (geldata/gel#9032)."""
    from modelyard.providers.embed_batches import said_bound

    assert said_bound("HTTP 400 INVALID_ARGUMENT: * BatchEmbedContentsRequest.requests: at most 100 requests can be "
                      "in one batch\n") == 100
    assert said_bound("HTTP 422 Validation: batch size 70 > maximum allowed batch size 32") == 32
    assert said_bound("HTTP 400: input is too long") is None


def test_ollamas_api_is_split_the_same_way(tmp_path, tei):
    """``/api/embed`` (the ``ollama`` client's ``embed``, Open WebUI's RAG) to the same server."""
    with GatewayServer(_config(tmp_path, tei.url, max_embed_batch=32)) as gw:
        r = httpx.post(gw.url + "/api/embed", json={"model": "rag", "input": TEXTS}, timeout=15)
        assert r.status_code == 200, r.text
        assert r.json()["embeddings"] == [pytest.approx(fake_vector(t, DIMS)) for t in TEXTS]
        assert len(tei.requests_to("/v1/embeddings")) == 3


def test_a_failing_call_fails_the_request_whole(tmp_path, tei):
    """The second call's refusal fails the attempt: no answer holds half the vectors (the next model, if any, embeds
    every text again)."""

    tei.push(Fault.ok(), Fault.status(500))
    with GatewayServer(_config(tmp_path, tei.url, max_embed_batch=32)) as gw:
        r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS}, timeout=15)
        assert r.status_code >= 500 and "data" not in r.json(), r.text
        assert len(tei.requests_to("/v1/embeddings")) == 2


def test_within_the_limit_one_call(tmp_path, tei):
    """A guard of the new path (the old code refuses the config's ``max_embed_batch``): a request within the bound is
    one call, and its row says nothing of calls."""
    with GatewayServer(_config(tmp_path, tei.url, max_embed_batch=32)) as gw:
        r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS[:32]}, timeout=15)
        assert r.status_code == 200 and len(r.json()["data"]) == 32
        assert len(tei.requests_to("/v1/embeddings")) == 1
        assert _rows(gw)[0][3] in (None, "")


def test_openais_token_bound_cuts_a_call_too():
    """300,000 tokens summed over a call's inputs (OpenAI's bound): a request of long non-Latin texts that the
    gateway takes (1,200,000 characters at most) can hold more, as this estimate reads them (1.5 characters a
    token)."""
    from modelyard.providers.embed_batches import BatchLimit, batches

    long = "Пример " * 30_000  # 210,000 characters: about 140,000 tokens each
    embed = EmbedInput((long, long, long, "short"))
    parts = batches(embed, BatchLimit(2048, 300_000))
    assert [len(p.texts) for p in parts] == [2, 2]
    assert sum((p.texts for p in parts), ()) == embed.texts
    assert [len(p.texts) for p in batches(embed, BatchLimit(3))] == [3, 1]
    assert batches(embed, BatchLimit()) == [embed]


def test_without_a_limit_ollama_gets_one_call(tmp_path):
    """Guard (passes on the old code): Ollama documents no bound on ``/api/embed``'s inputs: one call."""
    with OllamaServer(embed_models=["nomic-embed-text"], embedding_dims=DIMS) as ol:
        models = {"ol": {"provider": "ollama", "endpoint": ol.url, "model": "nomic-embed-text"}}
        config = make_config(models, {"rag": {"primary": "ol"}}, log={"path": str(tmp_path / "log.db")})
        with GatewayServer(config) as gw:
            r = httpx.post(gw.url + "/v1/embeddings", json={"model": "rag", "input": TEXTS}, timeout=15)
            assert r.status_code == 200 and len(r.json()["data"]) == 70
            assert len(ol.requests_to("/api/embed")) == 1
