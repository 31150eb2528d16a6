"""A client's stop sequences, applied at the gateway: the answer's text ends before the first of them.

Every provider is sent them (ChatRequest.stop), each in its API's form: an OpenAI-compatible server's ``stop``
(the first 4, OpenAI's limit), Ollama's ``options.stop``, llama-cpp-python's and llama-server's ``stop``,
Anthropic's ``stop_sequences`` (a whitespace-only one, which it refuses, left out) — so the model stops there
instead of writing on to ``max_tokens`` and holding its slot (an agent loop's ``Observation:``, an autocomplete's
newline). A stop there is a normal finish ("stop"), not a truncated answer. A server that refuses the field
(OpenAI's reasoning models: "Unsupported parameter: 'stop'") is asked again without it and learned, as any
sampling field (providers/sampling.py).

The text is still cut here, as the safety net: for a server that ignores or refuses them, for the sequences past
the 4 sent, and for the Messages API's ``stop_reason: "stop_sequence"`` (whose request does not send them on, so
the gateway still knows which one matched). Whole answers at once, streams as they come — the last few characters
that could begin a stop sequence are held back until the next piece shows whether they do. When only this cut
stops the answer, the router closes the model's stream there too (router/stop_watch.py): the model does not write on
to ``max_tokens`` holding its slot, and usage counts what it wrote up to the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopCutter:
    """One answer's text through the stop sequences, piece by piece."""

    def __init__(self, sequences: Sequence[str]):
        self.sequences = [s for s in sequences if s]
        self.matched: str | None = None
        self._held = ""

    def feed(self, text: str) -> str:
        """What of ``text`` (after what was held back) can be sent now."""
        if self.matched is not None:
            return ""
        if not self.sequences:
            return text
        pending = self._held + text
        found = [(at, s) for s in self.sequences if (at := pending.find(s)) >= 0]
        if found:
            at, self.matched = min(found)
            self._held = ""
            return pending[:at]
        hold = next((k for k in range(min(len(pending), max(map(len, self.sequences)) - 1), 0, -1)
                     if any(s.startswith(pending[-k:]) for s in self.sequences)), 0)
        self._held = pending[len(pending) - hold:] if hold else ""
        return pending[:len(pending) - hold]

    def flush(self) -> str:
        """The end of the answer: what was held back was no stop sequence after all."""
        held, self._held = self._held, ""
        return held


def cut(text: str, sequences: Sequence[str]) -> tuple[str, str | None]:
    """A whole answer's text up to its first stop sequence, and which one (None: none occurred)."""
    cutter = StopCutter(sequences)
    sent = cutter.feed(text)
    return sent + cutter.flush(), cutter.matched
