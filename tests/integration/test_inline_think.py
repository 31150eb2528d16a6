"""A reasoning model's inline ``<think>…</think>`` block, replayed as servers without a reasoning parser send it.

Shapes: Ollama's ``/v1`` serving Qwen3 with thinking off on versions that leave the block in ``content``
(ollama/ollama-python#529 "The `<think>xxxxxx</think>` block is always returned within the response";
yigit353/langchain-qwq#21: ``content`` begins ``<think>\\nOkay, the user just said "Hello".``), vLLM without
``--reasoning-parser`` (vllm-project/vllm#13375, #51679: the thinking arrives in ``content``), and a block that never
closes because the budget ran out inside it (QwenLM/Qwen3#1427: Ollama's QwQ/Qwen3 output "<think>嗯，用户的提问……"
with no ``</think>`` and no answer). Each is streamed a token at a time, as these servers do.

Before: an answer that was only its block (finish ``stop``) passed as an ok answer of ``<think>…</think>`` — the same
answer sent as ``reasoning_content`` was refused as ``unusable_reply`` and the backup asked; the block's text reached
a streaming client as the answer's first words; one cut inside the block came back as text opening with ``<think>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, SSE, chunk

from modelyard.router.router import CUT_THINKING
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "Hello")])
THOUGHT = ["<think>", "\n", "Okay", ", the user just said", ' "Hello".', " I should greet them back.", "\n"]


def tokens(*pieces: str, finish: str = "stop") -> Fault:
    """An OpenAI-style stream of ``content`` deltas, one token each, ending in ``finish``."""
    return Fault.raw(200, chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces),
                     chunk({}, finish), DONE, headers=SSE)


async def _streamed(servers: dict[str, Any], tmp_path: Path,  # noqa: F811 - fixture
                    fault: Fault) -> tuple[Any, list[tuple[str, str]]]:
    servers["openai"].push(fault)
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    try:
        stream = router.stream("agent", REQ)
        seen = [(c.kind, c.text) async for c in stream if c.kind in ("text", "thinking")]
        return stream, seen
    finally:
        await router.aclose()
        writer.close()


async def test_an_answer_that_is_only_its_inline_thinking_falls_back_unseen(servers: dict[str, Any],  # noqa: F811
                                                                           tmp_path: Path) -> None:
    stream, seen = await _streamed(servers, tmp_path, tokens(*THOUGHT, "</think>", "\n\n"))
    first = stream.record.attempts[0]
    assert (first.model, first.reason) == ("primary", "unusable_reply")
    assert "answered only its thinking" in (first.detail or "")
    assert stream.record.model == "backup" and stream.record.outcome == "fallback"
    # the client was sent the backup's answer and nothing of the primary's thinking
    assert "".join(t for k, t in seen if k == "text") == "backup answer"
    assert not any("<think>" in t or "Okay" in t for _, t in seen)


async def test_an_inline_block_that_never_closes_and_ends_is_no_answer(servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    stream, _ = await _streamed(servers, tmp_path, tokens(*THOUGHT))
    first = stream.record.attempts[0]
    assert (first.reason, stream.record.model) == ("unusable_reply", "backup")
    assert "never closed" in (first.detail or "")


async def test_inline_thinking_then_the_answer_is_thinking_then_text(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    # the tags split across deltas, as a tokenizer without <think> as one token streams them
    fault = tokens("<th", "ink>", "\nOkay, a greeting.\n</", "think>", "\n\n", "Hello!", " How can I help?")
    stream, seen = await _streamed(servers, tmp_path, fault)
    assert [(a.model, a.outcome) for a in stream.record.attempts] == [("primary", "ok")]
    assert stream.response.text == "Hello! How can I help?"
    assert stream.response.thinking == "\nOkay, a greeting.\n"
    assert "".join(t for k, t in seen if k == "text") == "Hello! How can I help?"
    # a tag after visible words is the answer's own text, as every reasoning parser takes it: passed on untouched
    stream, _ = await _streamed(servers, tmp_path, tokens("Use", " the <think>", " tag.", "</think>"))
    assert stream.response.text == "Use the <think> tag.</think>" and not stream.response.thinking


async def test_cut_at_max_tokens_inside_the_block_is_truncated_while_thinking(servers: dict[str, Any],  # noqa: F811
                                                                              tmp_path: Path) -> None:
    servers["openai"].push(tokens(*THOUGHT, finish="length"))
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    try:
        routed = await router.complete("agent", ChatRequest(messages=REQ.messages, max_tokens=8))
    finally:
        await router.aclose()
        writer.close()
    first = routed.record.attempts[0]
    assert (first.model, first.outcome) == ("primary", "ok") and routed.response.truncated
    assert routed.response.text == ""  # not "<think>\nOkay, …" passed on as the answer
    assert routed.response.thinking.startswith("\nOkay, the user just said")
    assert first.detail == CUT_THINKING and routed.record.finish_reason == "length"
