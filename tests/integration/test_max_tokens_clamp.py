"""A client's ``max_tokens`` past the model's output limit (Cline, Continue send 100k+, some the context size):
passed on as is, the cloud API answered 400, the router counted a bad_request and fell back — a cloud-first agent
answered from the local model without a word. Now it is clamped to the model's known limit (the provider's table,
or ``max_output`` in the config), and a refusal that states the limit is learned and asked once more; the route says
so. The fakes refuse a too-large ``max_tokens`` with the real APIs' words. Each case failed on the code before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.fakes import AnthropicServer, OpenAIServer
from tests.helpers import make_config

from modelyard.cli.render import route_line
from modelyard.gateway.responses import route_summary
from modelyard.providers.output_cap import anthropic_max_output, refused_limit
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

KEY = "sk-ant-test-clamp-abcdefghijklmnop"
REQ = ChatRequest(messages=[Message("user", "Hi")], max_tokens=200_000)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    started = {
        "anthropic": AnthropicServer(api_key=KEY, reply_text="claude", max_output=64000).start(),
        "openai": OpenAIServer(models=["gpt"], reply_text="gpt", max_output=16384).start(),
        "backup": OpenAIServer(models=["backup"], reply_text="backup answer").start(),
    }
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture(autouse=True)
def _reset(servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for s in servers.values():
        s.reset()
    monkeypatch.setenv("CLAMP_ANTHROPIC_KEY", KEY)


def _router(servers: dict[str, Any], primary: dict[str, Any]) -> Router:
    config = make_config(
        {"primary": primary, "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 5, "idle": 5, "total": 20},
                  "retries": {"attempts": 0, "backoff": 0.01, "max_wait": 1}},
    )
    return Router(config)


def _claude(servers: dict[str, Any], model: str) -> dict[str, Any]:
    return {"provider": "anthropic", "model": model, "api_key_env": "CLAMP_ANTHROPIC_KEY",
            "endpoint": servers["anthropic"].url}


def _sent(server: Any, path: str) -> list[int]:
    body = [r.json for r in server.requests_to(path)]
    return [b.get("max_completion_tokens") or b["max_tokens"] for b in body]


async def test_claude_known_limit_is_clamped_before_sending(servers: dict[str, Any]) -> None:
    """claude-haiku-4-5's limit is in the provider's table: one request, sent at 64000, answered by Claude."""
    router = _router(servers, _claude(servers, "claude-haiku-4-5-20251001"))
    routed = await router.complete("agent", REQ)
    await router.aclose()
    assert routed.response.text.startswith("claude") and routed.record.model == "primary"
    assert _sent(servers["anthropic"], "/v1/messages") == [64000]
    assert "max_tokens 200000 clamped to 64000" in route_summary(routed.record)
    assert "clamped to 64000" in route_line(routed.record)


async def test_claude_unknown_model_learns_its_limit_from_the_refusal(servers: dict[str, Any]) -> None:
    """A model the table does not know: the API's "max_tokens: 200000 > 64000, which is the maximum allowed…"
    is read, the request asked once more at 64000, and the next request goes at 64000 straight away."""
    router = _router(servers, _claude(servers, "claude-next-7"))
    first = await router.complete("agent", REQ)
    second = await router.complete("agent", REQ)
    await router.aclose()
    assert [(a.model, a.outcome, a.reason) for a in first.record.attempts] == [
        ("primary", "retry", "bad_request"), ("primary", "ok", None)]
    assert first.response.text.startswith("claude") and second.response.text.startswith("claude")
    assert _sent(servers["anthropic"], "/v1/messages") == [200000, 64000, 64000]
    assert "clamped to 64000" in route_summary(second.record)


async def test_openai_refusal_is_learned_and_config_max_output_clamps(servers: dict[str, Any]) -> None:
    """OpenAI's "max_tokens is too large: … supports at most 16384 completion tokens": learned, asked once more;
    with ``max_output`` in the config nothing is refused at all."""
    primary = {"provider": "openai", "model": "gpt", "endpoint": servers["openai"].url}
    router = _router(servers, primary)
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Hi")], max_tokens=100_000))
    await router.aclose()
    assert routed.record.model == "primary" and routed.response.text.startswith("gpt")
    assert _sent(servers["openai"], "/v1/chat/completions") == [100000, 16384]
    servers["openai"].reset()
    router = _router(servers, {**primary, "max_output": 8000})
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Hi")], max_tokens=100_000))
    await router.aclose()
    assert routed.record.model == "primary"
    assert _sent(servers["openai"], "/v1/chat/completions") == [8000]


async def test_a_thinking_budget_past_the_limit_leaves_room_within_it(servers: dict[str, Any]) -> None:
    """Anthropic's thinking budget counts inside ``max_tokens``: a 64000 budget made it 65024, refused for
    claude-haiku-4-5 (and not learnable: the client asked 1000). The budget now leaves 1024 for the answer."""
    router = _router(servers, {**_claude(servers, "claude-haiku-4-5"), "capabilities": ["thinking"]})
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Hi")], max_tokens=1000,
                                                        thinking=True, thinking_budget=64000))
    await router.aclose()
    assert routed.record.model == "primary"
    sent = servers["anthropic"].last_request.json
    assert sent["max_tokens"] == 64000 and sent["thinking"]["budget_tokens"] == 62976


async def test_a_budget_within_the_limit_is_sent_untouched(servers: dict[str, Any]) -> None:
    router = _router(servers, _claude(servers, "claude-haiku-4-5"))
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Hi")], max_tokens=500))
    await router.aclose()
    assert _sent(servers["anthropic"], "/v1/messages") == [500]
    assert route_summary(routed.record) == "primary ok (price unknown)"  # its config gives it no price: not free


def test_refusals_in_each_servers_words() -> None:
    """vLLM's limit depends on the prompt (context minus input): used for this request, not kept for the model."""
    anthropic = refused_limit("max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens "
                              "for claude-haiku-4-5-20251001")
    assert anthropic is not None and (anthropic.limit, anthropic.per_model) == (64000, True)
    vllm = refused_limit("'max_tokens' or 'max_completion_tokens' is too large: 100000. This model's maximum "
                         "context length is 32768 tokens and your request has 12 input tokens (100000 > 32768 - 12).")
    assert vllm is not None and (vllm.limit, vllm.per_model) == (32756, False)
    old_vllm = refused_limit("This model's maximum context length is 6048 tokens. However, you requested 6616 tokens "
                             "(568 in the messages, 6048 in the completion). Please reduce the length of the messages.")
    assert old_vllm is not None and (old_vllm.limit, old_vllm.per_model) == (5480, False)
    full = refused_limit("This model's maximum context length is 4096 tokens. However, you requested 9000 tokens "
                         "(5000 in the messages, 4000 in the completion).")
    assert full is None  # the prompt alone fills the context: no max_tokens helps
    assert refused_limit("messages: at least one message is required") is None
    assert anthropic_max_output("claude-opus-4-5-20251101") == 64000
    assert anthropic_max_output("claude-opus-4-1") == 32000
    assert anthropic_max_output("claude-unknown") is None


async def test_official_sdks_read_the_fakes_refusals(servers: dict[str, Any]) -> None:
    """The fakes' refusals are errors the official SDKs parse (BadRequestError carrying the API's message)."""
    import anthropic
    import openai

    claude = anthropic.AsyncAnthropic(api_key=KEY, base_url=servers["anthropic"].url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="claude-haiku-4-5", max_tokens=200_000, stream=True,
                                     messages=[{"role": "user", "content": "Hi"}])
    assert "which is the maximum allowed number of output tokens" in str(refused.value)
    await claude.close()
    gpt = openai.AsyncOpenAI(api_key="x", base_url=servers["openai"].url + "/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as too_large:
        await gpt.chat.completions.create(model="gpt", max_completion_tokens=100_000,
                                          messages=[{"role": "user", "content": "Hi"}])
    assert too_large.value.code == "invalid_value" and "supports at most 16384" in str(too_large.value)
    await gpt.close()


async def test_the_context_its_server_said_it_has_bounds_max_tokens(servers: dict[str, Any]) -> None:
    """A llama-server that refused a prompt past its context said the context (``exceed_context_size_error``'s
    ``n_ctx``, providers/context_refusal.py): the router keeps prompts as long away from it, and no answer there can be
    longer either — a ``max_tokens`` past it is clamped to it, and the route says why, as for a declared context.
    Before, only the config's ``context`` bounded it: 200000 went to the server as asked."""
    router = _router(servers, {"provider": "openai", "model": "gpt", "endpoint": servers["openai"].url})
    router.providers["primary"].refused_context(4096, 5000)
    routed = await router.complete("agent", REQ)
    await router.aclose()
    assert routed.record.model == "primary" and _sent(servers["openai"], "/v1/chat/completions") == [4096]
    assert "max_tokens 200000 clamped to 4096, the context its server said it has" in route_summary(routed.record)
