"""Token estimates: the one rule for guessing a text's size before a model has counted it.

Front-ends trim history with it, the router skips models whose context a prompt cannot fit, and a
provider whose server reports no usage logs it instead of zero. One rule, so a message the
front-end let through is judged the same way by the router, and a logged estimate means the same
thing everywhere. It errs on the high side: trimming a little too much is safe, overflowing a
context is not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from modelyard.types import ChatRequest, Message

#: role markers and separators every chat template adds around a message
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text``. English and code run about four characters per token; other
    scripts (Cyrillic, CJK) take far more tokens per character, so non-ASCII characters weigh more."""
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))  # C speed: router path
    return math.ceil(ascii_chars / 4 + (len(text) - ascii_chars) / 1.5)


def message_tokens(content: str) -> int:
    """One message of a conversation: its text plus the chat template's markers."""
    return estimate_tokens(content) + MESSAGE_OVERHEAD


def messages_tokens(messages: Iterable[Message]) -> int:
    """A conversation as a model reads it: every message's text and the tool calls it carries."""
    total = 0
    for m in messages:
        total += message_tokens(m.content)
        for call in m.tool_calls:
            total += estimate_tokens(call.name) + estimate_tokens(json.dumps(call.arguments, ensure_ascii=False))
    return total


def embed_input_tokens(item: str | tuple[int, ...]) -> int:
    """One embeddings input: a text estimated, token ids counted (they are tokens already)."""
    return estimate_tokens(item) if type(item) is str else len(item)


def request_tokens(request: ChatRequest) -> int:
    """A whole prompt: the conversation plus the tool definitions offered with it. An embeddings request's inputs are
    each embedded apart: its largest input is what a model's context must take (its ``messages`` hold only a label
    for token ids, "[3,000 token ids]", which weighed a few tokens: an input past a model's context was sent to it)."""
    if request.embed is not None:  # ids are counted exactly: no chat template's markers (OpenAI takes 8,192 of them)
        return max((embed_input_tokens(t) + (MESSAGE_OVERHEAD if type(t) is str else 0) for t in request.embed.texts),
                   default=0)
    tools = sum(estimate_tokens(t.name) + estimate_tokens(t.description)
                + estimate_tokens(json.dumps(t.parameters, ensure_ascii=False)) for t in request.tools)
    return messages_tokens(request.messages) + tools
