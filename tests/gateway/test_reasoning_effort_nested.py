"""``reasoning.effort`` — the Responses API's, and OpenRouter's on /v1/chat/completions — takes the same words as
chat's ``reasoning_effort`` (gateway/wire.py ``REASONING_EFFORTS``, one function for all three).

The Responses API's ``reasoning.effort`` is the openai SDK's same ``ReasoningEffort`` (types/shared/reasoning.py:
``effort: Optional[ReasoningEffort]``; platform.openai.com/docs/api-reference/responses/create); OpenRouter's
``reasoning: {"effort": "xhigh" | "high" | "medium" | "low" | "minimal" | "none"}`` (openrouter.ai/docs, reasoning
tokens) is of the set. Any other word there was read as thinking on, silently; now a 400 naming the field and the set,
as chat's ``reasoning_effort`` since a044f28. The refusal tests failed on the old code; the others are guards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelyard.gateway import responses_wire
from modelyard.gateway.wire import REASONING_EFFORTS, BadRequest, parse_body, to_chat_request

SET = "'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'"


def _responses(effort: Any) -> bool | None:
    raw = json.dumps({"model": "coder", "input": "hi", "reasoning": {"effort": effort}}).encode()
    return responses_wire.to_chat_request(responses_wire.parse_responses_body(raw)).thinking


def _chat(effort: Any) -> bool | None:
    raw = json.dumps({"model": "coder", "messages": [{"role": "user", "content": "hi"}],
                      "reasoning": {"effort": effort}}).encode()
    return to_chat_request(parse_body(raw)).thinking


@pytest.mark.parametrize("effort", ["bogus", "hihg", "auto", 3])
@pytest.mark.parametrize("read", [_responses, _chat], ids=["responses", "chat_openrouter_style"])
def test_an_effort_not_of_the_set_is_a_400_naming_reasoning_effort(read: Any, effort: Any) -> None:
    with pytest.raises(BadRequest) as refused:
        read(effort)
    assert refused.value.param == "reasoning.effort"
    assert refused.value.message == f"reasoning.effort: one of {SET} (or leave it out), got {effort!r}"


@pytest.mark.parametrize("read", [_responses, _chat], ids=["responses", "chat_openrouter_style"])
def test_the_sets_words_are_taken_as_before(read: Any) -> None:
    """Guard: "none" and "" off, each other word on, null as not given."""
    assert [read(e) for e in REASONING_EFFORTS] == [False] + [True] * (len(REASONING_EFFORTS) - 1)
    assert read("") is False
    assert read(None) is None
