"""llama-server's refusal of a prompt past its context (``exceed_context_size_error``, with ``n_prompt_tokens`` and
``n_ctx``: tests/fakes/llama_server.py cites the server's source, ggml-org/llama.cpp#15780 and
arbs-io/github-copilot-llm-gateway#73 for the shape) teaches the router the server's real context.

Was: nothing was kept of it — every long request of the agent was sent to that server first, refused, then given to
the next model (the refusal tokenizes the whole prompt each time); and the builds of llama.cpp#15780, which answered
it with a 500, had it read as a server_error: asked again for the same refusal and counted against a well model until
it cooled for every request, the short ones too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelyard.config.schema import ModelConfig
from modelyard.ledger import connect
from modelyard.providers.openai import OpenAIProvider
from tests.fakes import OllamaServer
from tests.fakes.llama_server import LlamaServer
from tests.gateway.harness import GatewayServer, make_config

N_CTX = 2048


def _config(tmp_path, llama_url: str, ollama_url: str, *, retries: int = 0, failures: int = 5) -> Any:
    models = {"llama": {"provider": "openai", "endpoint": llama_url, "model": "qwen2.5-7b", "max_concurrent": 2},
              "backup": {"provider": "ollama", "endpoint": ollama_url, "model": "backup-model", "max_concurrent": 2}}
    agents = {"chat": {"primary": "llama", "fallbacks": ["backup"]}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 5, "idle": 5, "total": 20},
                "retries": {"attempts": retries, "backoff": 0.01},
                "cooldown": {"failures": failures, "seconds": 30}}
    return make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.db")})


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer(reply_text="from the backup") as server:
        yield server


def _ask(gw: GatewayServer, words: int, *, stream: bool = False) -> httpx.Response:
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "word " * words}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=15)


def _attempts(gw: GatewayServer) -> list[tuple[str, str, str | None, str | None]]:
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT model, outcome, reason, detail FROM attempts ORDER BY ts, seq")]
    finally:
        conn.close()


def test_a_prompt_past_the_servers_context_is_not_sent_there_again(tmp_path, ollama):
    with LlamaServer(n_ctx=N_CTX) as llama, GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw:
        first = _ask(gw, 3000)
        assert first.status_code == 200 and first.json()["model"] == "backup", first.text
        assert len(llama.requests_to("/v1/chat/completions")) == 1
        refused = _attempts(gw)[0]
        assert refused[:3] == ("llama", "fallback", "bad_request")
        assert "exceed_context_size_error" in (refused[3] or "")
        assert f"the server's context: {N_CTX} tokens, the prompt's 3000" in (refused[3] or "")
        # the same prompt, and a shorter one still past the context it said, go straight to the next model
        for words, stream in ((3000, False), (2500, True)):
            again = _ask(gw, words, stream=stream)
            assert again.status_code == 200 and "backup" in again.text and "llama" not in again.text, again.text
        assert len(llama.requests_to("/v1/chat/completions")) == 1
        skipped = [a for a in _attempts(gw)[2:] if a[0] == "llama"]
        assert [a[:3] for a in skipped] == [("llama", "skipped", "bad_request")] * 2
        assert "refused a prompt of about" in (skipped[0][3] or "")
        assert "context its server said it has of 2048 tokens" in (skipped[1][3] or "")
        # a prompt that fits is still the server's: it is not cooled nor passed over
        short = _ask(gw, 200)
        assert short.status_code == 200 and short.json()["model"] == "llama", short.text
        assert len(llama.requests_to("/v1/chat/completions")) == 2


def test_the_500_of_older_builds_is_the_prompts_not_the_servers(tmp_path, ollama):
    """llama.cpp#15780's builds answered the refusal with a 500: one failure cools the model here
    (``cooldown.failures: 1``) and a retry is allowed — neither may happen for a prompt's length."""
    with LlamaServer(n_ctx=N_CTX, context_status=500) as llama, \
            GatewayServer(_config(tmp_path, llama.url, ollama.url, retries=1, failures=1)) as gw:
        long = _ask(gw, 3000)
        assert long.status_code == 200 and long.json()["model"] == "backup", long.text
        assert len(llama.requests_to("/v1/chat/completions")) == 1  # not asked again for the same refusal
        assert _attempts(gw)[0][:3] == ("llama", "fallback", "bad_request")
        short = _ask(gw, 200)
        assert short.status_code == 200 and short.json()["model"] == "llama", short.text


def test_what_is_learned_goes_with_a_server_seen_gone(tmp_path):
    """A refused connection: the server may come back with another ``--ctx-size``, so its context is asked again."""
    provider = OpenAIProvider("llama", ModelConfig(provider="openai", endpoint="http://127.0.0.1:9", model="m"))
    provider.refused_context(2048, 3754)
    provider.refused_context(2048, 3129)
    assert provider.learned_context is not None and provider.learned_context.refused_at == 3129
    provider.server_gone()
    assert provider.learned_context is None
