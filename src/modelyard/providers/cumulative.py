"""OpenAI-compatible streams whose text deltas carry everything said so far, not the next piece.

The spec's ``delta.content`` is the new piece. Some servers and relays send the text so far instead:

- every delta a snapshot — relays over Gemini's ``streamGenerateContent``, whose frames carry "the full accumulated
  candidate text" for thinking models (tashfeenahmed/freellmapi#1007), chat servers of their own (swuecho/chat#687:
  "Contains the full message content, not incremental");
- now and then one delta that is the whole text so far, between ordinary pieces (Volcengine Ark's DeepSeek,
  openclaw/openclaw#136262: "each exactly equal to the full text accumulated so far at that point").

Read as pieces, the client got the answer said twice or more ("SunSunnySunny day."), and the log stored it so.

Told apart from a model that repeats itself: a snapshot repeats *all* the text before it, which a piece of one
token does not, past an answer's first few characters. The two cases that cannot be told at once:

- the second delta extends the first ("Sun", "Sunny"): a snapshot, or two pieces ("ha", "haha"). It is held until
  the third says which (a snapshot extends the second too); a stream that ends there was snapshots;
- a delta equal to the whole text so far is a replay only past :data:`REPLAY_MIN` characters from several pieces:
  chatlas#435's "\\n", "\\n" (two equal pieces that start an answer) stays two.
"""

from __future__ import annotations

#: a delta equal to the text so far is a replay (openclaw#136262), not a piece, from this length on
REPLAY_MIN = 16


class Increments:
    """One stream's text deltas, each turned into the new piece it brings (see the module docstring)."""

    __slots__ = ("_cumulative", "_held", "_length", "_pieces", "_snapshot")

    def __init__(self) -> None:
        self._pieces: list[str] = []  # passed on, while deltas are pieces (joined only when a replay is likely)
        self._length = 0
        self._snapshot = ""  # the last snapshot, once deltas are snapshots
        self._cumulative = False
        self._held: str | None = None  # a second delta that extends the first: a snapshot or a piece?

    def new(self, text: str) -> str:
        """The part of ``text`` (a non-empty delta) not said before; "" while it is held or when it is a replay."""
        if self._cumulative:
            if text.startswith(self._snapshot):
                piece, self._snapshot = text[len(self._snapshot):], text
                return piece
            # no longer a snapshot of what came (a server that went back to pieces): a piece
            self._snapshot += text
            return text
        if (held := self._held) is not None:
            self._held = None
            if text.startswith(held):  # the third extends the second: snapshots
                self._cumulative, self._snapshot = True, text
                return text[self._length:]
            return self._said(held) + self._said(text)
        if self._length and len(text) > self._length and len(self._pieces) == 1 and text.startswith(self._pieces[0]):
            self._held = text
            return ""
        if (self._length == len(text) and self._length >= REPLAY_MIN and len(self._pieces) > 1
                and text == "".join(self._pieces)):
            return ""
        return self._said(text)

    def rest(self) -> str:
        """At the stream's end: what a held delta brings (read as the snapshot it was, the stream ending there)."""
        if (held := self._held) is None:
            return ""
        self._held = None
        return held[self._length:]

    def _said(self, piece: str) -> str:
        self._pieces.append(piece)
        self._length += len(piece)
        return piece
