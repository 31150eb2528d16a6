"""Second reading of session 31's landings (review32): defects found in what landed, each with the test that failed on
the landed code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import SSE, event
from tests.integration.test_wire_shapes_outside_in import MESSAGE_STOP, block, delta
from tests.integration.test_wire_shapes_round3 import outcomes
from tests.integration.test_wire_shapes_round4 import CACHED_START

from modelyard.types import ChatRequest, Message

#: Anthropic's answer to a prompt mostly read from its cache: message_start carries the prompt's whole count
#: (docs.anthropic.com/en/docs/build-with-claude/streaming: message_start's ``usage``, "input_tokens": 25,
#: "output_tokens": 1; the cached part apart, as tests/integration/test_wire_shapes_round4.py's CACHED_START), the
#: text then comes a delta at a time, and the output's count only at message_delta, after the last word
CACHED_ANSWER = [
    event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
        "stop_reason": None, "stop_sequence": None, "usage": CACHED_START}}),
    block(0, {"type": "text", "text": ""}),
    delta(0, {"type": "text_delta", "text": "Sunny"}),
    delta(0, {"type": "text_delta", "text": ".\nThen"}),
    delta(0, {"type": "text_delta", "text": " rain."}),
    event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                            "usage": {"output_tokens": 20}}),
    MESSAGE_STOP,
]
#: CACHED_START's prompt: 10 plain, 1,000 written to the cache, 5,000 read from it
PROMPT = 6010


@pytest.mark.parametrize("stops", [{"stop": ["\n"]}, {"cut_at": ["Then"]}], ids=["whitespace-stop", "messages-api"])
async def test_an_anthropic_stream_closed_at_a_stop_sequence_keeps_the_prompts_counts(
        servers: dict[str, Any], tmp_path: Path, stops: dict[str, list[str]]) -> None:  # noqa: F811
    """The router closes a model's stream at a client's stop sequence the model was not sent (ecffc81): a
    whitespace-only one, which Claude refuses ("each stop sequence must contain non-whitespace") and is never sent,
    and every one of the Messages API's ``stop_sequences``. Claude said the prompt's count at message_start, its
    cached part apart — but the provider gave it on only at the answer's end, never reached: the attempt logged the
    prompt as modelyard's estimate of its characters (a dozen tokens here) and no cache reads or writes, so the cost,
    the spend cap and ``report`` saw a 6,010-token prompt as 12 full-price ones. Now the counts Claude said."""
    servers["anthropic"].push(Fault.raw(200, *CACHED_ANSWER, headers=SSE))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    try:
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Weather?")], **stops))
    finally:
        await router.aclose()
        writer.close()
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    assert routed.response.text.startswith("Sunny.\n") and "stream closed at the stop sequence" in (
        routed.record.attempts[0].detail or "")
    attempt = routed.record.attempts[0]
    assert (attempt.tokens_in, attempt.cache_read_tokens, attempt.cache_write_tokens) == (PROMPT, 5000, 1000)
    assert routed.response.usage.input_tokens == PROMPT  # what the client is told, too


async def test_a_client_gone_during_an_anthropic_answer_keeps_the_prompts_counts(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The same for an answer whose client went away mid-stream (a closed connection, Ctrl-C): the cancelled attempt
    counted the prompt as the estimate, the cache's tokens left out."""
    servers["anthropic"].push(Fault.raw(200, "".join(CACHED_ANSWER[:3]), *CACHED_ANSWER[3:], headers=SSE,
                                        interval=0.5))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    try:
        stream = router.stream("agent", ChatRequest(messages=[Message("user", "Weather?")]))
        first = await anext(stream)
        while first.kind != "text":
            first = await anext(stream)
        await stream.aclose()
    finally:
        await router.aclose()
        writer.close()
    assert (first.kind, first.text) == ("text", "Sunny")
    attempt = stream.record.attempts[0]
    assert (attempt.tokens_in, attempt.cache_read_tokens) == (PROMPT, 5000), attempt
