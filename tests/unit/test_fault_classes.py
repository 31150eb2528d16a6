"""Issue 8's classification rules and the shared chunk checks, unit by unit.

End to end (fault servers → gateway, ask, agent loop) these are covered in
tests/integration/test_fault_shapes.py and tests/reliability/test_fault_shapes_gateway.py;
here each rule is pinned down on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelyard.config.schema import Cooldown
from modelyard.errors import HEALTH_FAILURES, PERSISTENT, RETRYABLE, ProviderError, Reason
from modelyard.providers.http import reason_for_status
from modelyard.providers.shapes import checked, content_parts, token_count
from modelyard.router.clock import ManualClock
from modelyard.router.health import Health, State
from modelyard.types import Chunk, ToolCall, Usage


def test_new_reasons_are_classified() -> None:
    assert Reason("model_missing") is Reason.MODEL_MISSING
    assert Reason("response_too_large") is Reason.RESPONSE_TOO_LARGE
    for reason in (Reason.MODEL_MISSING, Reason.RESPONSE_TOO_LARGE, Reason.MALFORMED_RESPONSE):
        assert reason in HEALTH_FAILURES and reason not in RETRYABLE  # same answer again: no retry
    assert {Reason.AUTH_ERROR, Reason.MODEL_MISSING} == PERSISTENT


@pytest.mark.parametrize(("status", "error_type", "reason"), [
    (404, "", Reason.MODEL_MISSING),                       # Ollama {"error": "model 'x' not found"}
    (404, "NotFoundError", Reason.MODEL_MISSING),          # vLLM
    (404, "not_found_error", Reason.MODEL_MISSING),        # Anthropic
    (400, "model_not_found", Reason.MODEL_MISSING),        # OpenAI-style code on a 400
    (400, "invalid_request_error", Reason.BAD_REQUEST),
    (413, "request_too_large", Reason.BAD_REQUEST),
    (429, "", Reason.RATE_LIMITED),
    (502, "", Reason.SERVER_ERROR),
])
def test_status_to_reason(status: int, error_type: str, reason: Reason) -> None:
    assert reason_for_status(status, error_type) is reason


def test_retry_after_of_an_hour_is_honoured_up_to_max_retry_after() -> None:
    clock = ManualClock(0.0)
    h = Health(Cooldown(failures=3, seconds=30, max_seconds=300, max_retry_after=3600), clock=clock)
    h.failure(Reason.RATE_LIMITED, retry_after=3600)
    assert h.state is State.OPEN and h.seconds_left() == 3600  # not cut to max_seconds (300)
    clock.now = 3599
    assert h.allow() is None
    clock.now = 3600
    assert h.allow() == "probe"
    capped = Health(Cooldown(max_retry_after=600), clock=clock)
    capped.failure(Reason.OVERLOADED, retry_after=86400)
    assert capped.seconds_left() == 600


def test_a_missing_model_cools_down_at_once_like_a_revoked_key() -> None:
    clock = ManualClock(0.0)
    h = Health(Cooldown(failures=5, seconds=30, max_seconds=300), clock=clock)
    h.failure(Reason.MODEL_MISSING)
    assert h.state is State.OPEN and h.seconds_left() == 300 and h.last_reason == "model_missing"


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", ("plain", "")),
    (None, ("", "")),
    ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], ("ab", "")),
    ({"type": "text", "text": "one part"}, ("one part", "")),
    ([{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}, {"type": "text", "text": "ok"}],
     ("ok", "hmm")),                                                     # Mistral Magistral
    ([{"type": "reasoning", "summary": [{"type": "summary_text", "text": "why"}]}], ("", "why")),  # GPT-OSS
    ([{"type": "refusal", "refusal": "no"}], ("no", "")),
])
def test_content_parts_accepted(value, expected) -> None:
    assert content_parts(value, "delta.content") == expected


@pytest.mark.parametrize("value", [
    [{"type": "image_url", "image_url": {"url": "data:,"}}], 42, [{"type": "text", "text": 7}], [None], True,
])
def test_content_parts_refused_as_malformed(value) -> None:
    with pytest.raises(ProviderError) as info:
        content_parts(value, "delta.content")
    assert info.value.reason is Reason.MALFORMED_RESPONSE


@pytest.mark.parametrize(("value", "expected"), [
    (12, 12), ("12", 12), (" 7 ", 7), (3.0, 3), (None, 0), ("n/a", 0), (-4, 0), (10**30, 0), (True, 0),
    (float("nan"), 0), ({"n": 1}, 0),
])
def test_token_counts_never_fail(value, expected) -> None:
    assert token_count(value) == expected


async def _run(*chunks: Chunk, limit: int = 1000) -> list[Chunk]:
    async def source() -> AsyncIterator[Chunk]:
        for c in chunks:
            yield c

    return [c async for c in checked(source(), limit)]


async def test_checked_joins_a_surrogate_pair_split_across_chunks() -> None:
    out = await _run(Chunk("text", text="smile \ud83d"), Chunk("text", text="\ude00!"),
                     Chunk("done", stop_reason="stop"))
    assert "".join(c.text for c in out if c.kind == "text") == "smile \U0001f600!"
    lone = await _run(Chunk("text", text="x\ud83d"), Chunk("done", stop_reason="stop"))
    assert "".join(c.text for c in lone if c.kind == "text") == "x\ufffd"


async def test_checked_refuses_an_answer_with_no_content_and_no_finish_reason() -> None:
    with pytest.raises(ProviderError) as info:
        await _run(Chunk("usage", usage=Usage(3, 0)), Chunk("done", stop_reason=""))
    assert info.value.reason is Reason.MALFORMED_RESPONSE
    # an empty answer the server explains (e.g. max_tokens reached while thinking) is an answer
    assert [c.kind for c in await _run(Chunk("done", stop_reason="length"))] == ["done"]
    # content without a finish reason: the server forgot to say why; "stop" is the honest default
    assert (await _run(Chunk("text", text="hi"), Chunk("done", stop_reason="")))[-1].stop_reason == "stop"


async def test_checked_bounds_the_answer_size() -> None:
    with pytest.raises(ProviderError) as info:
        await _run(*[Chunk("text", text="x" * 100) for _ in range(20)], Chunk("done", stop_reason="stop"), limit=1000)
    assert info.value.reason is Reason.RESPONSE_TOO_LARGE


async def test_checked_refuses_non_text_and_bad_tool_calls() -> None:
    for bad in (Chunk("text", text=["a"]), Chunk("tool_call", tool_call=ToolCall("", {})),  # type: ignore[arg-type]
                Chunk("tool_call", tool_call=ToolCall("f", ["x"]))):  # type: ignore[arg-type]
        with pytest.raises(ProviderError) as info:
            await _run(bad, Chunk("done", stop_reason="stop"))
        assert info.value.reason is Reason.MALFORMED_RESPONSE
    with pytest.raises(ProviderError) as info:
        await _run(Chunk("text", text="cut"))  # no done: the stream broke
    assert info.value.reason is Reason.CONNECTION_DROPPED
