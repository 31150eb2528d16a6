"""A llama-server's learned context (providers/context_refusal.py) is asked again after a while.

Its refusal of a prompt past its context (``exceed_context_size_error`` with ``n_ctx``: tests/fakes/llama_server.py
cites server-context.cpp and arbs-io/github-copilot-llm-gateway#73) teaches the router the server's context, and the
long prompts go elsewhere. It was kept until the server was seen gone (a refused connection) — but a llama-server
restarted between two requests with a larger ``--ctx-size`` is never seen gone, so every long prompt was still kept
from it for the whole process. Now the fact holds ``LEARNED_FOR`` after the last refusal (set short here), then the
next long prompt is sent again. The fake is "restarted" by changing its ``n_ctx`` between requests (what
``GET /props`` ``default_generation_settings.n_ctx`` would then say, llama.cpp tools/server/README.md). Both tests
failed on the old code.
"""

from __future__ import annotations

import time

import pytest

from modelyard.config.schema import ModelConfig
from modelyard.providers import context_refusal
from modelyard.providers.openai import OpenAIProvider
from tests.fakes.llama_server import LlamaServer
from tests.gateway.harness import GatewayServer
from tests.gateway.test_llama_context_learned import N_CTX, _ask, _attempts, _config, ollama  # noqa: F401

HELD = 0.5


def test_a_server_restarted_with_a_larger_context_gets_long_prompts_again(tmp_path, ollama,  # noqa: F811
                                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(context_refusal, "LEARNED_FOR", HELD, raising=False)
    with LlamaServer(n_ctx=N_CTX) as llama, GatewayServer(_config(tmp_path, llama.url, ollama.url)) as gw:
        assert _ask(gw, 3000).json()["model"] == "backup"  # refused there, learned
        assert _ask(gw, 3000).json()["model"] == "backup"  # skipped while the fact holds
        assert len(llama.requests_to("/v1/chat/completions")) == 1
        llama.n_ctx = 4 * N_CTX  # restarted with --ctx-size 8192 between requests: no connection refused
        time.sleep(HELD + 0.1)
        again = _ask(gw, 3000)
        assert again.status_code == 200 and again.json()["model"] == "llama", again.text
        outcomes = [a[:2] for a in _attempts(gw)]
    assert outcomes == [("llama", "fallback"), ("backup", "ok"), ("llama", "skipped"), ("backup", "ok"),
                        ("llama", "ok")]


def test_a_refusal_under_another_context_stands_alone():
    """A server back with a larger context that refuses a longer prompt: the smaller prompt refused under the old
    context no longer keeps prompts between the two from it."""
    provider = OpenAIProvider("llama", ModelConfig(provider="openai", endpoint="http://127.0.0.1:9", model="m"))
    provider.refused_context(2048, 3000)
    provider.refused_context(8192, 9000)
    learned = provider.learned_context
    assert learned is not None and (learned.n_ctx, learned.refused_at) == (8192, 9000)
