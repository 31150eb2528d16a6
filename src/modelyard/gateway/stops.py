"""A client's stop sequences, applied at the gateway: the answer's text ends before the first of them.

No provider behind the gateway is sent stop sequences (a chain mixes APIs that take them differently,
or not at all), yet clients rely on them (LangChain's and litellm's ``stop``, agent loops that stop
at ``Observation:``). So the text is cut here, as a model sent them would have stopped: whole answers
at once, streams as they come — the last few characters that could begin a stop sequence are held
back until the next piece shows whether they do. The model itself is not stopped: what it writes
after the stop is generated (and counted in usage) but never sent.
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
