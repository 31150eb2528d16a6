"""An answer's inline ``<think>…</think>`` block, read as the thinking it is.

A reasoning model served without a reasoning parser writes its thinking into the answer's text: llama-server run
without ``--reasoning-format`` for its model's template, vLLM without ``--reasoning-parser`` (vllm-project/vllm#13375,
#51679), older Ollama with ``think`` off (ollama/ollama-python#529; yigit353/langchain-qwq#21: ``content`` opens
``<think>\nOkay, the user just said "Hello".``), QwQ on Ollama cut inside the block with no ``</think>`` and no
answer (QwenLM/Qwen3#1427). Passed on as text, the thinking reached the gateway's clients as the answer's first
words, and an answer that was *only* its thinking (finish ``stop``, nothing after ``</think>``) passed as ok — while
the very same answer sent as ``reasoning_content`` was refused as unusable and the next model asked. Read here as
thinking, the block is held back from the client like any thinking until visible text comes, so such an answer falls
back before anyone saw it, and one cut inside the block (``length``) is an answer truncated while thinking, not a
text that begins with ``<think>``.

Only a block that opens the answer (after white space) is read so: a ``<think>`` later in the text is the model's
words, as every server's reasoning parser takes it.
"""

from __future__ import annotations

import enum

from modelyard.types import Chunk

OPEN, CLOSE = "<think>", "</think>"


class Phase(enum.Enum):
    #: nothing but white space, or the start of ``<think>``, seen yet
    LEADING = "leading"
    #: inside the block: text is thinking
    THINKING = "thinking"
    #: just after ``</think>``: white space before the answer is dropped (what ``agents/visible.py`` drops)
    AFTER = "after"
    #: decided: the rest is the answer's text, passed on untouched
    PLAIN = "plain"


def _held_tail(text: str) -> int:
    """How many trailing characters of ``text`` could be the start of ``</think>`` (held until the next piece)."""
    for n in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if CLOSE.startswith(text[-n:]):
            return n
    return 0


class InlineThink:
    """Splits a stream's text chunks into thinking and text; :attr:`phase` ``PLAIN`` once nothing is left to do."""

    __slots__ = ("closed", "held", "owed", "phase", "seen")

    def __init__(self) -> None:
        self.phase = Phase.LEADING
        self.held = ""  # text not yet passed on (leading white space, a tag's first characters)
        self.owed = 0  # the deltas of held text, counted on the next chunk passed on
        self.seen = False  # the answer opened with <think>
        self.closed = False  # … and its </think> came

    def _out(self, kind: str, text: str) -> Chunk:
        chunk = Chunk("thinking" if kind == "thinking" else "text", text=text, pieces=self.owed)
        self.owed = 0
        return chunk

    def feed(self, chunk: Chunk) -> list[Chunk]:
        """The chunks a text chunk stands for: thinking, then text, either maybe empty (not passed on)."""
        self.owed += chunk.pieces
        text = self.held + chunk.text
        self.held = ""
        out: list[Chunk] = []
        if self.phase is Phase.LEADING:
            lead = text.lstrip()
            if not lead or (len(lead) < len(OPEN) and OPEN.startswith(lead)):
                self.held = text
                return out
            if not lead.startswith(OPEN):
                self.phase = Phase.PLAIN
                return [self._out("text", text)]
            self.phase, self.seen, text = Phase.THINKING, True, lead[len(OPEN):]
        if self.phase is Phase.THINKING:
            end = text.find(CLOSE)
            if end < 0:
                keep = _held_tail(text)
                if keep:
                    text, self.held = text[:-keep], text[-keep:]
                if text:
                    out.append(self._out("thinking", text))
                return out
            if end:
                out.append(self._out("thinking", text[:end]))
            self.phase, self.closed, text = Phase.AFTER, True, text[end + len(CLOSE):]
        if self.phase is Phase.AFTER:
            text = text.lstrip()
            if not text:
                return out
            self.phase = Phase.PLAIN
        out.append(self._out("text", text))
        return out

    def flush(self) -> list[Chunk]:
        """What is still held when the stream ends: a lone white space or tag start is text, a tail of the block
        (a ``</`` that never became ``</think>``) is thinking."""
        held, self.held = self.held, ""
        if not held:
            return []
        return [self._out("thinking" if self.phase is Phase.THINKING else "text", held)]

    def only_thought(self) -> str:
        """Why an answer with no text and no tool call, that opened with ``<think>``, is unusable."""
        if self.closed:
            return ("the model answered only its thinking: nothing came after its inline </think> (a reasoning "
                    "model served without a reasoning parser)")
        return ("the model answered only its thinking: its inline <think> block never closed and the answer ended "
                "(a reasoning model served without a reasoning parser)")
