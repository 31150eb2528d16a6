"""A client's sampling fields and Claude's Messages API, through the clients themselves (anthropic, openai SDKs).

The Messages API takes ``temperature``, ``top_p`` and ``top_k`` (its reference: docs.anthropic.com/en/api/messages;
anthropic-sdk-python's ``MessageCreateParams`` named them until 2.14, which sends them as ``extra_body``) and no other
sampling field — one it does not know is a 400 "<field>: Extra inputs are not permitted" (amrit110/oli#7,
Aider-AI/aider#3367). ``top_p`` and ``top_k`` were never sent to
Claude, and ``seed``, ``min_p`` and the penalties were dropped with no word said (the README even said Anthropic's API
"takes no sampling fields"). Now top_p and top_k go; what Claude has no field for is left out and the route says so.

Newer models refuse some of them, each with its own 400 (the fake says them word for word, tests/fakes/anthropic.py):
Sonnet 4.5 and Haiku 4.5 take temperature or top_p, not both ("`temperature` and `top_p` cannot both be specified for
this model. Please use only one.": di-sukharev/opencommit#520, chatboxai/chatbox#2670, BerriAI/litellm#15097); Opus
4.7 and later take none ("`top_p` is deprecated for this model": router-for-me/CLIProxyAPI#4383, mnfst/modelparams.dev
#238). Either is learned as ``temperature``'s deprecation was: asked again at once without the refused field
(temperature kept beside top_p), later requests go so, the route says what was left out.

A ``top_k`` or a thinking ``budget_tokens`` past a 64-bit integer went to the backend as sent: now a 400 naming the
field, as a ``seed`` past it is. These tests failed on the old code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import AnthropicServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

ASK = [{"role": "user", "content": "hi"}]
KEY = "sk-gw-anthropic2"
ANTHROPIC_KEY = "sk-ant-anthropic2"


@pytest.fixture
def claudes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, AnthropicServer]]:
    monkeypatch.setenv("ANTHROPIC2_KEY", ANTHROPIC_KEY)
    with AnthropicServer(api_key=ANTHROPIC_KEY) as plain, \
            AnthropicServer(api_key=ANTHROPIC_KEY, one_of_temperature_top_p=True) as sonnet, \
            AnthropicServer(api_key=ANTHROPIC_KEY, adaptive_only=True) as opus:
        yield {"plain": plain, "sonnet": sonnet, "opus": opus}


@pytest.fixture
def gw(tmp_path: Any, claudes: dict[str, AnthropicServer]) -> Iterator[GatewayServer]:
    ids = {"plain": "claude-test-model", "sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-7"}
    models = {name: {"provider": "anthropic", "endpoint": server.url, "model": ids[name],
                     "api_key_env": "ANTHROPIC2_KEY"} for name, server in claudes.items()}
    config = make_config(models, {name: {"primary": name} for name in models}, defaults={"retries": {"attempts": 0}},
                         log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config, api_keys=(KEY,)) as server:
        yield server


@pytest.fixture
def oa(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=15)


@pytest.fixture
def an(gw: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, timeout=15)


def sent(server: AnthropicServer, *fields: str) -> list[list[str]]:
    return [[f for f in fields if f in r.json] for r in server.requests]


def test_top_p_and_top_k_reach_claude(an, oa, claudes):
    an.messages.create(model="plain", max_tokens=20, messages=ASK, extra_body={"top_p": 0.9, "top_k": 40})
    assert (claudes["plain"].last_request.json["top_p"], claudes["plain"].last_request.json["top_k"]) == (0.9, 40)
    oa.chat.completions.create(model="plain", messages=ASK, top_p=0.5, extra_body={"top_k": 3})
    assert (claudes["plain"].last_request.json["top_p"], claudes["plain"].last_request.json["top_k"]) == (0.5, 3)


def test_fields_claude_has_none_of_are_left_out_and_said(oa, claudes):
    raw = oa.chat.completions.with_raw_response.create(
        model="plain", messages=ASK, seed=7, frequency_penalty=0.5, top_p=0.9, logit_bias={"1": 2},
        extra_body={"min_p": 0.05})
    assert raw.http_response.status_code == 200
    assert sent(claudes["plain"], "seed", "frequency_penalty", "min_p", "logit_bias", "top_p") == [["top_p"]]
    assert ("seed, frequency_penalty, min_p, logit_bias left out: Anthropic's API takes none"
            in raw.headers["x-modelyard-route"])


def test_a_model_that_takes_temperature_or_top_p_keeps_temperature_and_remembers(oa, claudes):
    """Sonnet 4.5 / Haiku 4.5: every request with both (an OpenAI client's temperature beside a top_p) was refused
    — once top_p went at all. Asked again at once with temperature alone; the next request goes so from the start, and
    a top_p given alone still goes."""
    sonnet = claudes["sonnet"]
    raws = [oa.chat.completions.with_raw_response.create(model="sonnet", messages=ASK, temperature=0.2, top_p=0.9)
            for _ in range(2)]
    assert sent(sonnet, "temperature", "top_p") == [["temperature", "top_p"], ["temperature"], ["temperature"]]
    for raw in raws:
        assert raw.http_response.status_code == 200
        assert ("top_p left out: the model takes temperature or top_p, not both (temperature kept)"
                in raw.headers["x-modelyard-route"])
    raw = oa.chat.completions.with_raw_response.create(model="sonnet", messages=ASK, top_p=0.9)
    assert sent(sonnet, "temperature", "top_p")[-1] == ["top_p"] and "left out" not in raw.headers["x-modelyard-route"]


def test_a_model_that_refuses_top_p_and_top_k_is_asked_without_them_and_remembers(an, oa, claudes):
    """Opus 4.7 and later refuse each ("`top_p` is deprecated for this model"): one refusal at a time, each field
    learned; the next request sends neither, and the route says so."""
    opus = claudes["opus"]
    an.messages.create(model="opus", max_tokens=20, messages=ASK, extra_body={"top_p": 0.9, "top_k": 40})
    raw = oa.chat.completions.with_raw_response.create(model="opus", messages=ASK, top_p=0.9, extra_body={"top_k": 5})
    assert sent(opus, "top_p", "top_k") == [["top_p", "top_k"], ["top_k"], [], []]
    assert "top_p, top_k left out: the model refuses them" in raw.headers["x-modelyard-route"]


def test_a_top_k_past_int64_is_a_400_naming_it(an, oa, claudes):
    with pytest.raises(anthropic.BadRequestError) as err:
        an.messages.create(model="plain", max_tokens=20, messages=ASK, extra_body={"top_k": 2**63})
    assert "top_k" in str(err.value)
    with pytest.raises(openai.BadRequestError) as bad:
        oa.chat.completions.create(model="plain", messages=ASK, extra_body={"top_k": 2**63})
    assert bad.value.body["param"] == "top_k"
    assert claudes["plain"].requests == []


@pytest.mark.parametrize("api", ["messages", "chat"])
def test_a_thinking_budget_past_int64_is_a_400_naming_it(api, an, oa, claudes):
    thinking = {"type": "enabled", "budget_tokens": 2**63}
    if api == "messages":
        with pytest.raises(anthropic.BadRequestError) as err:
            an.messages.create(model="plain", max_tokens=20, messages=ASK, thinking=thinking)  # type: ignore[arg-type]
        assert "thinking.budget_tokens" in str(err.value)
    else:
        with pytest.raises(openai.BadRequestError) as bad:
            oa.chat.completions.create(model="plain", messages=ASK, extra_body={"thinking": thinking})
        assert bad.value.body["param"] == "thinking.budget_tokens"
    assert claudes["plain"].requests == []
