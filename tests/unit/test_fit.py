"""One rule for "message too long" (router/fit.py) and one token estimate (tokens.py).

A prompt too long for one model skips that model and goes to the next one with a larger context;
only a prompt no model of the chain can take fails, as a bad request, without calling any model.
"""

from __future__ import annotations

import pytest
from tests.helpers import ScriptedProvider, make_config

from modelyard.router import ChainExhausted, ModelPool, RequestRecord, Router
from modelyard.router.fit import DEFAULT_ANSWER_TOKENS, fit, prompt_budget, too_long_for
from modelyard.tokens import estimate_tokens, message_tokens, request_tokens
from modelyard.types import ChatRequest, Message, ToolCall, ToolDefinition

SMALL, LARGE = 1024, 32768


def config(small_first: bool = True, **agent):
    models = {"small": {"provider": "openai", "context": SMALL}, "large": {"provider": "openai", "context": LARGE},
              "open": {"provider": "openai"}}
    chain = ["small", "large"] if small_first else ["large", "small"]
    agents = {"agent": {"primary": chain[0], "fallbacks": chain[1:], **agent},
              "tiny": {"primary": "small"}, "unbounded": {"primary": "small", "fallbacks": ["open"]}}
    return make_config(models, agents, defaults={"retries": {"attempts": 0}})


def words(tokens: int) -> str:
    return "abc " * tokens  # four ASCII characters: one estimated token each


def build(cfg):
    providers = {n: ScriptedProvider(n, cfg.models[n], text=f"from {n}") for n in cfg.models}
    records: list[RequestRecord] = []
    return Router(cfg, pool=ModelPool(cfg, providers=providers), sink=records.append), providers, records


def test_one_estimate_counts_scripts_tool_calls_and_tool_definitions() -> None:
    assert estimate_tokens("") == 0 and estimate_tokens("abcd" * 25) == 25
    assert estimate_tokens("привет мир") > len("привет мир") / 4  # non-ASCII weighs more
    assert message_tokens("abcd") == 1 + 4  # the chat template's markers
    plain = ChatRequest(messages=[Message("user", "abcd" * 10)])
    assert request_tokens(plain) == 14
    calling = ChatRequest(messages=[Message("user", "abcd" * 10),
                                    Message("assistant", "", [ToolCall("read_file", {"path": "x" * 40})])],
                          tools=[ToolDefinition("read_file", "reads a file " * 10)])
    assert request_tokens(calling) > request_tokens(plain) + 4 + 10 + 30


def test_budget_leaves_room_for_the_answer_and_a_large_max_tokens_caps_the_answer_only() -> None:
    cfg = config()
    small = cfg.models["small"]
    assert prompt_budget(small, None) == SMALL - DEFAULT_ANSWER_TOKENS
    assert prompt_budget(small, 100) == SMALL - 100
    assert prompt_budget(small, 100_000) == SMALL // 2
    assert prompt_budget(cfg.models["open"], None) is None
    assert too_long_for(small, SMALL - DEFAULT_ANSWER_TOKENS, None) is None
    why = too_long_for(small, SMALL, None)
    assert why is not None and f"{SMALL}" in why and "about 1024 tokens" in why


def test_fit_refuses_only_what_no_model_of_the_chain_can_take() -> None:
    cfg = config()
    middle = fit(cfg, ["agent"], 2000)  # too long for small, fine for large
    assert not middle.too_long and middle.fitting == ("large",)
    assert middle.room == LARGE - DEFAULT_ANSWER_TOKENS and middle.largest == LARGE - DEFAULT_ANSWER_TOKENS
    short = fit(cfg, ["agent"], 100)
    assert short.fitting == ("small", "large") and short.room == SMALL - DEFAULT_ANSWER_TOKENS  # history fits both
    assert fit(cfg, ["agent"], 40_000).too_long
    assert fit(cfg, ["tiny"], 2000).too_long and fit(cfg, ["tiny"], 2000).largest == SMALL - DEFAULT_ANSWER_TOKENS
    assert not fit(cfg, ["unbounded"], 10**6).too_long  # a model with no declared context takes anything
    assert not fit(cfg, ["tiny", "agent"], 2000).too_long  # automatic routing: any agent's chain counts


@pytest.mark.parametrize("small_first", [True, False])
async def test_a_prompt_too_long_for_one_model_goes_to_the_next_with_a_larger_context(small_first: bool) -> None:
    router, providers, records = build(config(small_first))
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", words(2000))]))
    assert routed.record.model == "large" and routed.response.text == "from large"
    assert providers["small"].calls == 0
    skipped = [(a.model, a.outcome, a.reason) for a in routed.record.attempts if a.model == "small"]
    assert skipped == ([("small", "skipped", "bad_request")] if small_first else [])
    assert records == [routed.record]


async def test_a_short_prompt_still_goes_to_the_small_primary() -> None:
    router, providers, _ = build(config())
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", words(100))]))
    assert routed.record.model == "small" and providers["large"].calls == 0


async def test_the_system_prompt_and_max_tokens_count_too() -> None:
    router, providers, _ = build(config(system=words(600), max_tokens=300))
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", words(300))]))
    assert routed.record.model == "large" and providers["small"].calls == 0  # 600 + 300 + 300 > 1024


async def test_a_prompt_no_model_can_take_fails_as_bad_request_without_calling_any() -> None:
    router, providers, records = build(config())
    with pytest.raises(ChainExhausted) as err:
        await router.complete("agent", ChatRequest(messages=[Message("user", words(40_000))]))
    assert [(a.model, a.outcome, a.reason) for a in err.value.record.attempts] == [
        ("small", "skipped", "bad_request"), ("large", "skipped", "bad_request")]
    assert all(p.calls == 0 for p in providers.values()) and len(records) == 1
    # a skip for size says nothing about the model's health: the next short prompt is served
    routed = await router.complete("agent", ChatRequest(messages=[Message("user", "hi")]))
    assert routed.record.model == "small"
