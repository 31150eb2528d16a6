"""An OpenAI-style API's prompt cache in what a model costs: ``usage.prompt_tokens_details.cached_tokens`` is the part
of ``prompt_tokens`` read from the cache (OpenAI's prompt-caching guide; the same shape in xAI's docs,
docs.x.ai/developers/advanced-api-usage/prompt-caching/usage-and-pricing), billed at a discount that differs by model
(gpt-4.1: $2.00 input, $0.50 cached input per million on OpenAI's pricing page; gpt-4o 0.5x, gpt-5 0.1x)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes.openai_compat import OpenAIServer
from tests.helpers import make_config

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

#: a prompt long enough to be cached (OpenAI caches prompts of 1,024 tokens and more, in steps of 128)
PROMPT = " ".join(["word"] * 2000)
CACHED = 1536


async def _route(price: dict[str, float], log: Path) -> tuple[int, int, float, float]:
    """One answer of gpt-4.1 through the fake with ``CACHED`` prompt tokens read from its cache: (tokens in, tokens
    out, the attempt's cost, the logged cost)."""
    with OpenAIServer(models=["gpt-4.1"]) as server:
        server.cached_tokens = CACHED
        config = make_config({"gpt": {"provider": "openai", "model": "gpt-4.1", "endpoint": server.url,
                                      "price": price}}, {"agent": {"primary": "gpt"}},
                             defaults={"retries": {"attempts": 0}})
        writer = LogWriter(log)
        router = Router(config, sink=writer.submit)
        routed = await router.complete("agent", ChatRequest([Message("user", PROMPT)]))
        await router.aclose()
        writer.close()
    attempt = routed.record.attempts[-1]
    logged = connect(log).execute("SELECT cost_usd FROM attempts").fetchone()[0]
    return attempt.tokens_in, attempt.tokens_out, attempt.cost_usd, logged


async def test_cached_prompt_tokens_are_priced_at_the_configured_cache_read(tmp_path: Path) -> None:
    """The cached part was unread: a model priced with ``cache_read`` was billed its whole prompt at the input price
    (1,536 of ~2,000 tokens at $2.00 instead of $0.50 per million) — spend, the spend caps and `report` overstated."""
    tin, tout, cost, logged = await _route({"input": 2.0, "output": 8.0, "cache_read": 0.5}, tmp_path / "log.db")
    assert tin > CACHED and tout > 0
    expected = ((tin - CACHED) * 2.0 + CACHED * 0.5 + tout * 8.0) / 1e6
    assert cost == pytest.approx(expected) and logged == pytest.approx(expected)


async def test_without_a_cache_read_price_a_cached_token_is_an_input_token(tmp_path: Path) -> None:
    """guard: unset, OpenAI's discount is not known (0.5x, 0.25x or 0.1x by model), so a cached token is priced as
    input — never Anthropic's 0.1x default, which would put a gpt-4o spend (and its cap) at 55% of the cached part's
    real cost."""
    tin, tout, cost, _ = await _route({"input": 2.5, "output": 10.0}, tmp_path / "log.db")
    assert cost == pytest.approx((tin * 2.5 + tout * 10.0) / 1e6)
