"""Fill-in-the-middle (a prompt and a ``suffix``) asked of a chat model, as one instruction and one message.

Code-completion clients send the text before the cursor and the text after it (OpenAI's legacy
``/v1/completions`` ``prompt`` + ``suffix``; Continue's FIM providers, Tabby, Twinny). A FIM-trained model
answers that raw, in its own special tokens (``<|fim_prefix|>…``) — but every provider behind this gateway
is spoken to through its chat API (``ChatRequest`` carries messages, no raw prompt), and the special tokens
differ per model family. So the gap is described in words instead: an instruction, and the text with a
marker where the answer goes. How well that works depends on the model: a coder model follows it, a small
general one may explain itself or wrap the code in fences; the gateway passes on what the model wrote.
"""

from __future__ import annotations

from modelyard.types import Message

#: where the answer goes, in the text the model is shown
HOLE = "<FILL_HERE>"

INSTRUCTION = (
    "You fill in a gap in a text (fill-in-the-middle code completion). The user's message is the text, with "
    f"{HOLE} where the gap is. Reply with only the text that belongs at {HOLE}: no explanation, no code fences, "
    "nothing repeated from before or after it. Reply with nothing if nothing belongs there."
)


def fill_in_messages(prefix: str, suffix: str) -> list[Message]:
    """The chat a model is asked for the text between ``prefix`` and ``suffix``."""
    return [Message("system", INSTRUCTION), Message("user", f"{prefix}{HOLE}{suffix}")]
