"""Messages Telegram splits that make one request: an album, and a long text the person's app cut in pieces.

An album (several photos or files sent at once) comes as one message per item sharing a ``media_group_id``, a caption
on the item it was written on — each item may carry its own (openclaw/openclaw#110690). Each item was handled apart:
the captioned one answered, every other one told "I can't see a photo — … (a caption on it works too)".

A text longer than a message holds (4,096 characters) is cut by the person's Telegram app into several messages sent
at once, nothing marking the later ones as its continuation (tdesktop#5972: "When received you have no idea if several
messages were parts of one"). The first piece was answered alone, ending mid-sentence, and each next piece as a
question of its own (opencrabs#950, takopi#171, opencode-telegram-bot#169). Only length tells: a message near the limit
waits :data:`GATHER_WAIT` for the person's next one, and a next one near the limit waits again.

Forwards alone wait longer for what the person says about them. Telegram delivers each message of a multi-message
forward as an update of its own, and the person's request typed after them ("summarise these") as another, seconds
later: the forwards were answered after a second's quiet, then the request as a second question (banteg/takopi#89:
forwards, then "can you fix this?", one run each; chatwoot/chatwoot#13308: 5–10 forwarded at once). A group of
forwards with no words of the person's own waits :data:`FORWARD_WAIT` after each arrival, never longer than
:data:`FORWARD_HOLD` from the first (the bot shows it is typing meanwhile); a message of the person's own ends the
wait at once, and a comment sent first (the forward window's) keeps the one-second wait. The official apps send a
forward's comment first, as a message of its own just before the forwarded ones (tdesktop#6900, its maintainer: "the
resulting sequence is: 1. comment 2. forwarded message"; openclaw/openclaw#9619: the comment 709, the forward 710), so
words after forwards are a message typed later. A person whose forwards stood alone :data:`STOOD_ALONE` times in a row
is not waited for: a lone forward was answered 3 s later than a message, each time, for a request that never came.

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
#: — a group of forwards alone waits longer (:data:`FORWARD_WAIT`)
GATHER_WAIT = 1.0
#: a text this long (UTF-16 code units, as Telegram counts) may be a piece of a longer one the app cut: the apps cut at
#: a line or word break before the limit, so a piece can fall short of it
NEAR_LIMIT = MAX_MESSAGE - 512
#: the quiet a group of forwards alone waits after each arrival: for the rest of a forward that came across polls
#: (a long poll returns as soon as there is one update: core.telegram.org/bots/api#getupdates) and for the request the
#: person types after them
FORWARD_WAIT = 3.0
#: the longest a group of forwards alone is held from its first arrival: after it the one-second wait applies again
FORWARD_HOLD = 6.0
#: a person whose last this many groups of forwards alone each stood alone — no words of theirs came after them —
#: forwards without a request to follow: their next forwards wait the one-second :data:`GATHER_WAIT`, and a request
#: that does follow still joins the answer begun (and they wait :data:`FORWARD_WAIT` again from then)
STOOD_ALONE = 2


def may_continue(text: str | None) -> bool:
    """A text long enough to be a piece of a longer one, its next piece to come."""
    return text is not None and utf16_len(text) >= NEAR_LIMIT


@dataclass
class _Open:
    updates: list[Update]
    more: bool
    #: forwards only so far: none of the person's own words (waits :data:`FORWARD_WAIT`)
    patient: bool
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Gatherer:
    """The groups being gathered, by key (a chat's album, a person's text in a chat)."""

    def __init__(self, wait: float = GATHER_WAIT, patience: float = FORWARD_WAIT, hold: float = FORWARD_HOLD):
        self.wait = wait
        self.patience, self.hold = patience, hold
        self._open: dict[Hashable, _Open] = {}

    def gathering(self, key: Hashable) -> bool:
        """A group under this key takes more messages now."""
        group = self._open.get(key)
        return group is not None and group.more

    async def gather(self, key: Hashable, update: Update, *, more: bool = True,
                     earlier: Sequence[Update] = (), patient: bool = False) -> list[Update] | None:
        """The group's updates in the order sent, for the first one once no other came for :attr:`wait`; None for the
        others (the first answers for them). ``more``: another may follow this one (False: a text's last piece).
        ``earlier``: updates taken before this first one that belong to its group (a comment a poll brought alone).
        ``patient``: this one is a forward, its group waits longer while it holds no words of the person's own."""
        group = self._open.get(key)
        if group is not None and group.more:
            group.updates.append(update)
            group.more = more
            group.patient = group.patient and patient
            group.arrived.set()
            return None
        group = self._open[key] = _Open([*earlier, update], more, patient and not earlier)
        deadline = asyncio.get_running_loop().time() + self.hold
        try:
            while group.more:
                group.arrived.clear()
                wait = self.wait
                if group.patient:
                    wait = max(wait, min(self.patience, deadline - asyncio.get_running_loop().time()))
                try:
                    await asyncio.wait_for(group.arrived.wait(), wait)
                except TimeoutError:
                    break
        finally:
            if self._open.get(key) is group:
                del self._open[key]
        return sorted(group.updates, key=lambda u: u.effective_message.message_id if u.effective_message else 0)
