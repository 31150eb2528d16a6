"""A client's seed to Mistral's API, whose seed is ``random_seed``.

Mistral's chat completion reference (docs.mistral.ai/api, ``random_seed``: "The seed to use for random sampling. If
set, different calls will generate deterministic results"; simonw/llm-mistral#2 shows it repeatable) has no ``seed``:
its API refuses one as pydantic's extra input, 422 ``{"detail": [{"type": "extra_forbidden", "loc": ["body", "seed"],
"msg": "Extra inputs are not permitted"}]}`` (wrapped as ``message.detail`` on its own API: openai-agents-python#442;
bare from a Mistral model on Azure AI Foundry: langchain-ai/langchain-azure#82). The seed was then left out: a
seeded run on Mistral was no longer repeatable. Each test here failed on the code before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import OpenAIServer
from tests.integration.test_sampling_refused import ASK, REPLY, RefusingServer, _routed, _sent, extra_forbidden

from modelyard.config.schema import ModelConfig
from modelyard.providers.openai import OpenAIProvider
from modelyard.types import ChatRequest

SEEDS = ("seed", "random_seed")


@pytest.fixture(scope="module")
def backup() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text="backup answer") as server:
        yield server


@pytest.mark.parametrize("wrapped", [True, False], ids=["mistral_api", "azure_foundry_mistral"])
async def test_a_seed_refused_as_an_extra_input_goes_as_random_seed(wrapped: bool, backup: OpenAIServer,
                                                                    tmp_path: Path) -> None:
    """Refused as ``seed``: asked again at once with it as ``random_seed``, learned (the next request sends
    ``random_seed`` from the start); nothing left out, so the routing log's rows carry no note."""
    asked = ChatRequest(ASK, seed=123)
    with RefusingServer([extra_forbidden("seed", wrapped=wrapped)]) as server:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, SEEDS)
        seeds = [r.json.get("random_seed") for r in server.requests if r.path.endswith("/chat/completions")]
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [["seed"], ["random_seed"], ["random_seed"]]
    assert seeds == [None, 123, 123]
    assert rows == [("primary", "ok", None, None), ("primary", "ok", None, None)]


async def test_a_server_refusing_random_seed_too_is_asked_without_a_seed(backup: OpenAIServer,
                                                                         tmp_path: Path) -> None:
    """A pydantic server with neither name: the seed left out after the second refusal, as any refused seed, and
    the rows say so."""
    asked = ChatRequest(ASK, seed=5)
    refusals = [extra_forbidden("seed", wrapped=False), extra_forbidden("random_seed", wrapped=False)]
    with RefusingServer(refusals) as server:
        routed, cooling, rows = await _routed(server, backup, tmp_path, asked, asked)
        sent = _sent(server, SEEDS)
    assert [r.response.text for r in routed] == [REPLY, REPLY] and cooling == 0
    assert sent == [["seed"], ["random_seed"], [], []]
    note = "seed left out: the model's server refuses it"
    assert rows == [("primary", "ok", None, note), ("primary", "ok", None, note)]


@pytest.mark.parametrize("endpoint", ["https://api.mistral.ai/v1", "https://codestral.mistral.ai/v1"])
def test_mistral_hosts_get_random_seed_from_the_start(endpoint: str) -> None:
    """Mistral's own hosts: ``random_seed`` on the first request, no refusal spent (chat and FIM bodies alike)."""
    provider = OpenAIProvider("m", ModelConfig(provider="openai", endpoint=endpoint, model="mistral-small-latest"))
    body = provider.body(ChatRequest(ASK, seed=9))
    assert body.get("random_seed") == 9 and "seed" not in body


def test_other_hosts_keep_seed() -> None:
    """Guard (right before too): OpenAI's, vLLM's, llama-server's ``seed`` elsewhere."""
    provider = OpenAIProvider("m", ModelConfig(provider="openai", endpoint="https://api.openai.com/v1", model="x"))
    body = provider.body(ChatRequest(ASK, seed=9))
    assert body.get("seed") == 9 and "random_seed" not in body
