"""Embeddings round 3, end to end on fakes of Ollama's and an OpenAI-compatible server's endpoints: a model's refusal
of a kind of request is asked again in time, a slow embeddings batch cools no chats, and a chat model that cannot be
asked does not fix the chain's vector space.

Sources the assertions follow:

- Ollama's chat models refuse vectors with a 500 "this model does not support embeddings" (chunkhound/chunkhound#41,
  through Ollama's ``/v1``; langchain-ai/docs#5109: ``OllamaEmbeddings(model="llama3")`` fails, ``nomic-embed-text``
  works), and ``ollama pull`` replaces what a name serves on the running server (ollama/ollama#2778: embedding models
  are pulled, not run) — a refusal remembered until restart outlives the model it was about.
- Ollama embeds a batch's texts one after another (cbcoutinho/nextcloud-mcp-server#1347): a batch's time says how
  much text it held, not whether the model answers chats.
- A 429 with ``Retry-After`` opens the breaker for that long (router/health.py), longer than a refusal is believed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.embeddings import fake_vector
from tests.fakes.ollama import canonical_model
from tests.gateway.embeddings_kit import TIMEOUTS, attempts, chat, close_to, embed, gateways
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

DIMS = 8
#: how long a refusal is believed here (``cooldown.max_seconds``): long enough for two requests on a loaded machine
BELIEVED = 2.0


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with OpenAIServer(embedding_dims=DIMS) as both, \
            OllamaServer(embed_models=["nomic-embed-text"], chat_models=["llama3.2"], embedding_dims=DIMS) as ol:
        yield {"both": both, "ollama": ol}


def _config(tmp_path, s: dict[str, Any], cooldown: dict[str, Any]):
    models = {
        "chat": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "llama3.2"},
        "nomic": {"provider": "ollama", "endpoint": s["ollama"].url, "model": "nomic-embed-text"},
        # one model serving both kinds (an OpenAI-compatible server: LM Studio, OpenAI itself)
        "both": {"provider": "openai", "endpoint": s["both"].url, "model": "qwen3"},
    }
    agents = {"chat-only": {"primary": "chat"}, "rag": {"primary": "chat", "fallbacks": ["nomic"]},
              "both": {"primary": "both"}}
    defaults = {"timeouts": TIMEOUTS, "retries": {"attempts": 0}, "cooldown": cooldown}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def make_gw(tmp_path, servers):
    def make(**cooldown: Any) -> GatewayServer:
        servers["ollama"].embed_models = {canonical_model("nomic-embed-text")}
        policy = {"failures": 1, "seconds": 0.3, "max_seconds": BELIEVED, **cooldown}
        return start(_config(tmp_path, servers, policy))

    with gateways(servers.values()) as start:
        yield make
    servers["ollama"].embed_models = {canonical_model("nomic-embed-text")}


def _asked(servers: dict[str, Any]) -> int:
    return len(servers["ollama"].requests_to("/api/embed"))


# -- 1. a remembered refusal is asked again ---------------------------------------------------------------------------

def test_a_refusal_is_believed_for_max_seconds_then_asked_again(make_gw, servers):
    """``llama3.2`` refuses vectors; then an embedding model is pulled under that name. The refusal was remembered
    until the gateway restarted: every request answered 400 without asking. Now it is believed, without a round trip,
    for ``cooldown.max_seconds``; then the server is asked again, and what the new model gives is answered."""
    gw = make_gw()
    r = embed(gw, "chat-only", "a passage")
    assert r.status_code == 400 and "does not support embeddings" in r.text
    r = embed(gw, "chat-only", "a passage")
    assert r.status_code == 400 and "refused before: not asked again for" in r.text
    assert _asked(servers) == 1  # believed: not asked again
    servers["ollama"].embed_models.add(canonical_model("llama3.2"))  # `ollama pull`: an embedding model, same name
    time.sleep(BELIEVED + 0.1)
    r = embed(gw, "chat-only", "a passage")
    assert r.status_code == 200, r.text
    assert close_to(r.json()["data"][0]["embedding"], fake_vector("a passage", DIMS))
    assert _asked(servers) == 2 and [a[:3] for a in attempts(gw)] == [("chat", "ok", None)]


def test_a_refusal_is_asked_again_once_the_server_was_seen_gone(make_gw, servers):
    """Ollama restarted (an upgrade, another model pulled in the meantime) is another server: the refusal its
    predecessor gave is not believed past the refused connection that showed it gone."""
    gw = make_gw(max_seconds=300, failures=5)  # believed for 5 minutes, and one connection refused cools nothing
    assert embed(gw, "chat-only", "x").status_code == 400
    assert embed(gw, "chat-only", "x").status_code == 400 and _asked(servers) == 1
    servers["ollama"].stop()
    try:
        assert chat(gw, "chat-only").status_code >= 500
        assert [a[:3] for a in attempts(gw)] == [("chat", "fallback", "connect_error")]
    finally:
        servers["ollama"].embed_models.add(canonical_model("llama3.2"))
        servers["ollama"].start()
    r = embed(gw, "chat-only", "x")
    assert r.status_code == 200, r.text
    assert _asked(servers) == 2


# -- 2. a slow embeddings batch cools no chats ------------------------------------------------------------------------

def test_an_embeddings_timeout_leaves_the_models_chats_served(make_gw, servers):
    """A batch that outlives its bound (first_token per 2,048 tokens) opened the model's breaker, and its chats —
    answered at once by the same server — were skipped as cooling_down for the cooldown. A batch's time is its size
    (errors.says_health): the attempt still fails and moves on, but the model stays available."""
    gw = make_gw(seconds=30)
    servers["both"].push(Fault.delay(1.5))
    r = embed(gw, "both", "one text")
    assert r.status_code >= 500 and [a[:3] for a in attempts(gw)] == [("both", "fallback", "first_token_timeout")]
    assert {s.name: s.state for s in gw.router.model_states()}["both"] == "available"
    r = chat(gw, "both")
    assert r.status_code == 200, r.text
    assert [a[:3] for a in attempts(gw)] == [("both", "ok", None)]


def test_guard_a_server_error_on_embeddings_still_cools_the_model(make_gw, servers):
    """Guard (passes on the old code too): what the server itself says of its health counts whatever was asked."""
    gw = make_gw(seconds=30)
    servers["both"].push(Fault.status(500))
    assert embed(gw, "both", "one text").status_code >= 500
    assert {s.name: s.state for s in gw.router.model_states()}["both"] == "cooling_down"
    assert [a[:3] for a in attempts(gw)] == [("both", "fallback", "server_error")]


# -- 3. a chat model that cannot be asked fixes no space --------------------------------------------------------------

def test_guard_a_cooling_chat_model_past_its_refusal_does_not_fix_the_space(make_gw, servers):
    """Guard for the refusal's expiry: [llama3.2, nomic-embed-text]. llama3.2 refused vectors, so nomic's are the
    chain's; then llama3.2 is rate-limited (429, Retry-After 60: cooling past the refusal's time). It cannot be asked,
    and its last word was a refusal: nomic still answers, not a 503 for a space llama3.2 never gave."""
    gw = make_gw()
    r = embed(gw, "rag", "a query")
    assert r.status_code == 200 and r.json()["model"] == "nomic"
    servers["ollama"].push(Fault.status(429, 60))
    assert chat(gw, "chat-only").status_code >= 400
    assert {s.name: s.state for s in gw.router.model_states()}["chat"] == "cooling_down"
    time.sleep(BELIEVED + 0.1)  # the refusal is past its time; the model cannot be asked
    r = embed(gw, "rag", "a query")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "nomic"
    assert [a[:3] for a in attempts(gw)] == [("chat", "skipped", "cooling_down"), ("nomic", "ok", None)]
