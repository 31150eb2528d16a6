"""Messages Telegram splits that make one request: an album, and a long text the person's app cut in pieces.

An album (several photos or files sent at once) comes as one message per item sharing a ``media_group_id``, a caption
on the item it was written on — each item may carry its own (openclaw/openclaw#110690). Each item was handled apart:
the captioned one answered, every other one told "I can't see a photo — … (a caption on it works too)".

A text longer than a message holds (4,096 characters) is cut by the person's Telegram app into several messages sent
at once, nothing marking the later ones as its continuation (tdesktop#5972: "When received you have no idea if several
messages were parts of one"). The first piece was answered alone, ending mid-sentence, and each next piece as a
question of its own (opencrabs#950, takopi#171, opencode-telegram-bot#169). Only length tells: a message near the limit
waits :data:`GATHER_WAIT` for the person's next one, and a next one near the limit waits again.

The first message to come answers for all (not always the album's first: kurigram-org/kurigram#39, items of albums
forwarded at once "come in with different order"); the others end quietly (:meth:`Gatherer.gather` returns None).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from telegram import Update

from modelyard.frontends.streaming import MAX_MESSAGE
from modelyard.frontends.telegram_format import utf16_len

#: how long the first message waits for the next of its album, or of its text (sent at once, they come within a poll
#: or two). Each arrival starts the wait again, so ten forwards wait as long as they keep coming. Peers coalesce
#: forwards within 80 ms, "tuned to Telegram's update delivery pattern" (HKUDS/nanobot#2508, openclaw/openclaw#19476,
#: merged); the 2–3 s windows others report (openclaw#12797, claude-plugins-official#1029) are for bursts a person types
#: — no report measures a forward more than 1 s after the previous one
GATHER_WAIT = 1.0
#: a text this long (UTF-16 code units, as Telegram counts) may be a piece of a longer one the app cut: the apps cut at
#: a line or word break before the limit, so a piece can fall short of it
NEAR_LIMIT = MAX_MESSAGE - 512


def may_continue(text: str | None) -> bool:
    """A text long enough to be a piece of a longer one, its next piece to come."""
    return text is not None and utf16_len(text) >= NEAR_LIMIT


@dataclass
class _Open:
    updates: list[Update]
    more: bool
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Gatherer:
    """The groups being gathered, by key (a chat's album, a person's text in a chat)."""

    def __init__(self, wait: float = GATHER_WAIT):
        self.wait = wait
        self._open: dict[Hashable, _Open] = {}

    def gathering(self, key: Hashable) -> bool:
        """A group under this key takes more messages now."""
        group = self._open.get(key)
        return group is not None and group.more

    async def gather(self, key: Hashable, update: Update, *, more: bool = True,
                     earlier: Sequence[Update] = ()) -> list[Update] | None:
        """The group's updates in the order sent, for the first one once no other came for :attr:`wait`; None for the
        others (the first answers for them). ``more``: another may follow this one (False: a text's last piece).
        ``earlier``: updates taken before this first one that belong to its group (a comment a poll brought alone)."""
        group = self._open.get(key)
        if group is not None and group.more:
            group.updates.append(update)
            group.more = more
            group.arrived.set()
            return None
        group = self._open[key] = _Open([*earlier, update], more)
        try:
            while group.more:
                group.arrived.clear()
                try:
                    await asyncio.wait_for(group.arrived.wait(), self.wait)
                except TimeoutError:
                    break
        finally:
            if self._open.get(key) is group:
                del self._open[key]
        return sorted(group.updates, key=lambda u: u.effective_message.message_id if u.effective_message else 0)
