"""``reasoning_effort`` on /v1/chat/completions takes OpenAI's words only.

OpenAI's API reference ("Constrains effort on reasoning for reasoning models. Currently supported values are none,
minimal, low, medium, high, and xhigh": platform.openai.com/docs/api-reference/chat/create, its OpenAPI description as
docs.rs/agentsdk-openai mirrors it in ``ReasoningEffort``) and its SDK's literal list (``ReasoningEffort`` in
openai/types/shared/reasoning_effort.py: "none", "minimal", "low", "medium", "high", "xhigh", "max") name the set; any
other word is OpenAI's 400. Here ``"bogus"`` (a typo, ``"hihg"``, or another API's word) was taken and read as
thinking on: the client asked for one thing and got another, with no word of it. Now a 400 naming the field and the
words it takes; the test of it failed on the old code, the others are guards.
"""

from __future__ import annotations

import json
import typing

import openai.types.shared.reasoning_effort as sdk
import pytest

from modelyard.gateway.openapi import openapi_document
from modelyard.gateway.wire import REASONING_EFFORTS, BadRequest, parse_body, to_chat_request

BODY = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}


def _thinking(effort: str) -> bool | None:
    return to_chat_request(parse_body(json.dumps({**BODY, "reasoning_effort": effort}).encode())).thinking


@pytest.mark.parametrize("effort", ["bogus", "hihg", "HIGH", "auto"])
def test_a_reasoning_effort_not_of_openais_set_is_a_400_naming_it_and_the_set(effort: str) -> None:
    with pytest.raises(BadRequest) as refused:
        _thinking(effort)
    assert refused.value.param == "reasoning_effort"
    assert refused.value.message == ("reasoning_effort: one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', "
                                     f"'max' (or leave it out), got {effort!r}")


def test_openais_words_are_taken_as_before() -> None:
    """Guard: "none" (and "", as it always was) is thinking off, each other word of the set on."""
    assert [_thinking(e) for e in REASONING_EFFORTS] == [False] + [True] * (len(REASONING_EFFORTS) - 1)
    assert _thinking("") is False


def test_the_set_is_the_sdks_and_openapi_json_says_it() -> None:
    """Guard of the list itself: the openai SDK in the venv names the same words, and /openapi.json lists them (a
    schema-valid request is never refused here)."""
    literal = typing.get_args(sdk.ReasoningEffort)[0]
    assert set(typing.get_args(literal)) == set(REASONING_EFFORTS)
    schema = openapi_document()["components"]["schemas"]
    chat = next(s for s in schema.values() if "reasoning_effort" in s.get("properties", {}))
    assert chat["properties"]["reasoning_effort"]["enum"] == [*REASONING_EFFORTS, None]
