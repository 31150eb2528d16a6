"""A stop during a long prompt's evaluation ends it within moments, with the real embedded model.

It was seen between tokens only, so it waited for the whole prompt: 85 s for ~3,300 tokens on this loaded 2-core
machine, while `serve` logged uvicorn's "Cancel 1 running task(s), timeout graceful shutdown exceeded" after 5 s
and `ask` gave up after 60 s (a newcomer's fourth walk)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.providers import llamacpp
from modelyard.providers.llamacpp import LlamaCppProvider
from modelyard.types import ChatRequest, Message

pytestmark = pytest.mark.model

LONG = "Summarise this:\n" + " ".join(
    f"Line {i}: the quick brown fox jumps over the lazy dog and keeps running through field number {i}."
    for i in range(130))


async def _generating(provider: LlamaCppProvider, timeout: float = 180.0) -> None:
    """Until the worker holds the loaded model (the prompt's evaluation has begun)."""
    deadline = time.monotonic() + timeout
    while True:
        llm = llamacpp._models.get(provider._key())
        if llm is not None and llm._modelyard_lock.locked():
            return
        assert time.monotonic() < deadline, "the model never started on the prompt"
        await asyncio.sleep(0.02)


async def test_a_stop_during_a_long_prompt_ends_within_moments_and_the_model_answers_after(
        default_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    provider = LlamaCppProvider("local", ModelConfig(provider="llamacpp", path=str(default_model), context=4096))
    stream = provider.stream(ChatRequest(messages=[Message("user", LONG)], max_tokens=16), Timeouts())
    first = asyncio.ensure_future(anext(stream))
    await _generating(provider)
    await asyncio.sleep(0.3)
    assert not first.done()  # still in the prompt (~3,300 tokens: seconds even on an idle machine)
    caplog.set_level(logging.ERROR, logger="modelyard.llamacpp")
    started = time.monotonic()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    stopped = time.monotonic() - started
    assert stopped < 3.0, f"the worker took {stopped:.1f}s to let go of the model"
    assert not [r for r in caplog.records if r.name == "modelyard.llamacpp"]  # the stop is not a decode failure
    # the aborted evaluation left nothing behind: the next answer is a real one
    chunks = [c async for c in provider.stream(
        ChatRequest(messages=[Message("user", "Reply with exactly: pong")], max_tokens=8, temperature=0.0), Timeouts())]
    text = "".join(c.text or "" for c in chunks if c.kind == "text")
    assert "pong" in text.lower(), chunks


async def test_a_stop_between_tokens_keeps_the_prompts_cache(default_model: Path) -> None:
    """A stream closed after its first tokens (the router at a client's stop sequence, router/stop_watch.py; a
    client gone mid-answer) is stopped between tokens, not by aborting the decode under way: an aborted decode drops
    the sequence's cache (the worker resets the model), and the next request on the same prompt evaluated all of it
    again — 4 s of a 44-token prompt on this loaded machine instead of 0.3 s, each time an answer was closed so."""
    provider = LlamaCppProvider("local", ModelConfig(provider="llamacpp", path=str(default_model), context=1024))
    ask = ChatRequest(messages=[Message("user", "Write a numbered list of 30 fruits, one per line.")],
                      max_tokens=64, temperature=0.0)
    stream = provider.stream(ask, Timeouts())
    texts = 0
    async for chunk in stream:
        texts += chunk.kind == "text"
        if texts == 3:
            break
    await stream.aclose()
    llm = llamacpp._models[provider._key()]
    assert llm.n_tokens > 10, "the model's cache was dropped: the next request evaluates the whole prompt again"
