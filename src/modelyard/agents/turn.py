"""One conversational turn, the entry point every front-end (Telegram, chat, gateway) uses.

Front-ends hand over the conversation so far and get the answer streamed back through
``on_text`` (called with the *accumulated* visible text, so a front-end that edits one
message can simply show the latest value). Thinking text never reaches ``on_text``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from modelyard.runtime import Runtime
from modelyard.types import ChatRequest, Message

OnText = Callable[[str], Awaitable[None]]


@dataclass
class TurnResult:
    text: str
    agent: str
    model: str | None
    request_id: str
    #: human-readable steps, e.g. ["orchestrator: engineer (fast, 0.82, 1.2ms)", "engineer → qwen-coder-0.5b"]
    route: list[str] = field(default_factory=list)


async def handle_turn(runtime: Runtime, history: list[Message], *, agent: str | None = None,
                      on_text: OnText | None = None) -> TurnResult:
    """Answer the last user message of ``history`` with ``agent`` (default: the default agent).

    Raises ChainExhausted / StreamInterrupted from :mod:`modelyard.router` when no model answers.
    """
    name = agent or runtime.config.first_agent
    stream = runtime.router.stream(name, ChatRequest(messages=history))
    text = ""
    try:
        async for chunk in stream:
            if chunk.kind == "text":
                text += chunk.text
                if on_text is not None:
                    await on_text(text)
    finally:
        await stream.aclose()
    record = stream.record
    return TurnResult(text, name, record.model, record.id, [f"{name} → {record.model}"])
