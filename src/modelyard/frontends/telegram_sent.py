"""What this bot process knows of each chat's message ids: the ids its sends got back and the ids of the messages it
took from getUpdates, and how many sends it lost the answer of.

A sendMessage whose answer was lost (a read timeout, a dropped connection, a 504 from Telegram's front) may be on
screen with an id the bot never learns, and the Bot API has no call that finds a message by its text. A placeholder
lost that way stayed above its answer as a bare '…'. To find it (``StreamingReply``) the bot must be sure of every
other message of its own in the chat since the person's question: each one it sent has an id recorded here, and no
other send of that time may have lost its answer. Message ids in a private chat are the bot account's own sequence
across all its chats, not the chat's (tdlib/td#2419: "arithmetic operations must not be performed on message
identifiers"; LonamiWebs/Telethon#1308: unique per channel, otherwise per account; Pyrogram's "Message identifiers":
"every account, whether it's an user account or bot account, has its own message counter") — so nothing is computed
from them, they are only tried and excluded. In a supergroup the counter is the chat's.

What the search can lean on either way: the person's messages and the bot's take ids from one counter, in the order
Telegram got them (tdlib/td#1378: "messages must be sorted by their identifier"). So every id the bot knew in the chat
when it made the lost send — its own sends answered, the messages it took — is below the lost message's: the search
begins above the highest (``floor``), the ids below only tried after. And the person's own messages, which in a busy
chat (a burst queued behind the answer being written) lay between the question and the lost placeholder, are known
ids, not tries: the six tries there were went to them ("message can't be edited") and the '…' was never reached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, islice

from telegram import Bot, InlineKeyboardMarkup, Message, MessageEntity
from telegram.error import BadRequest, TelegramError

log = logging.getLogger(__name__)

#: ids kept per chat, and chats kept (least recently written to dropped first)
IDS_KEPT = 512
CHATS_KEPT = 4096
#: ids tried, at most, in looking for a message whose answer was lost (a placeholder, a part, a command's reply) — each
#: an editMessageText that counts against the chat's flood limit. Only ids the bot does not know are tried (its own
#: sends, the person's messages are skipped), those above the highest id it knew when it made the lost send first:
#: where the chat's ids are its own (a supergroup's) that is the lost message's, unless the person's next message
#: crossed it; where they are the bot's across its chats (a private chat's), another chat's may come first
LOST_PROBES = 6
#: lost sends since a question, at most, among which one is looked for (each other one met costs two edits)
LOST_TOGETHER = 4
#: how far past the message before it a lost message is looked for (its id is above; only unknown ids are tried)
LOST_SPAN = 100_000


@dataclass(frozen=True, slots=True)
class Shown:
    """What a send showed (its text, entities and buttons): a lost one is told apart from another lost beside it by
    this, and put back as it was should a probe for the other change it."""

    text: str
    entities: tuple[MessageEntity, ...] = ()
    markup: InlineKeyboardMarkup | None = None
    #: the message it replied to: what tells apart two lost sends an edit met, should their texts not
    reply_to: int | None = None

    def same_text(self, other: Shown) -> bool:
        """An edit to ``other`` leaves a message showing this "not modified" (the buttons aside)."""
        return self.text == other.text and self.entities == other.entities

    def alike(self, other: Shown) -> bool:
        """An edit to ``other`` leaves a message showing this "not modified", buttons and all."""
        return self.same_text(other) and self.markup == other.markup


#: what each lost send showed is kept for this many of the chat's latest lost sends
SHOWN_KEPT = 64


class _Chat:
    __slots__ = ("dropped", "floor", "found", "ids", "lost", "met", "shown", "top")

    def __init__(self) -> None:
        self.ids: deque[int] = deque(maxlen=IDS_KEPT)
        #: the highest id no longer kept: nothing can be said of the messages up to it
        self.dropped = 0
        self.lost = 0
        #: the lost sends (numbered 1.. in the order lost) since found on screen, and the id each was found as
        self.found: dict[int, int] = {}
        #: what the latest lost sends showed, by number
        self.shown: OrderedDict[int, Shown] = OrderedDict()
        #: lost sends found by the search for another (its probe met them), not yet by their own: number → id
        self.met: dict[int, int] = {}
        #: the highest id known in the chat when its latest lost send was made: that message's id is above it
        self.floor = 0
        #: the highest id known
        self.top = 0


class SentLog:
    """Per chat: the ids known (messages sent, answer received; messages taken), and the count of sends whose answer
    was lost."""

    def __init__(self) -> None:
        self._chats: OrderedDict[int, _Chat] = OrderedDict()
        #: chats forgotten: a count of lost sends starts again at 0, so a mark taken before means nothing after
        self.forgotten = 0

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat()
            if len(self._chats) > CHATS_KEPT:
                self._chats.popitem(last=False)
                self.forgotten += 1
        self._chats.move_to_end(chat_id)
        return chat

    def took(self, chat_id: int, message_id: int) -> None:
        """A message the bot sent (its answer received), or one it took from getUpdates: not a lost one."""
        chat = self._chat(chat_id)
        if len(chat.ids) == IDS_KEPT:
            chat.dropped = max(chat.dropped, chat.ids[0])
        chat.ids.append(message_id)
        chat.top = max(chat.top, message_id)

    def highest(self, chat_id: int) -> int:
        """The highest id known in the chat now (0: none): a send made from here on gets a higher one."""
        chat = self._chats.get(chat_id)
        return chat.top if chat is not None else 0

    def lost(self, chat_id: int, floor: int = 0, shown: Shown | None = None) -> None:
        """A send whose answer was lost, made when ``floor`` was the chat's :meth:`highest`, that showed ``shown``."""
        chat = self._chat(chat_id)
        chat.lost += 1
        chat.floor = floor
        if shown is not None:
            chat.shown[chat.lost] = shown
            if len(chat.shown) > SHOWN_KEPT:
                chat.shown.popitem(last=False)

    def mark(self, chat_id: int) -> tuple[int, int]:
        """Where the chat's lost sends stand now; :meth:`unfound_since` counts from it."""
        chat = self._chats.get(chat_id)
        return (self.forgotten, chat.lost if chat is not None else 0)

    def unfound_since(self, chat_id: int, mark: tuple[int, int]) -> list[tuple[int, Shown | None]]:
        """The sends to the chat lost since ``mark`` and not found on screen: their numbers and what each showed."""
        chat = self._chats.get(chat_id)
        if chat is None or self.forgotten != mark[0]:
            return []
        return [(n, chat.shown.get(n)) for n in range(mark[1] + 1, chat.lost + 1) if n not in chat.found]

    def met_since(self, chat_id: int, mark: tuple[int, int], shown: Shown) -> int | None:
        """The id of a send lost since ``mark`` showing ``shown`` that the search for another lost send beside it met
        on screen (and put back): found for it, once. None when there is none."""
        chat = self._chats.get(chat_id)
        if chat is None or self.forgotten != mark[0]:
            return None
        number = next((n for n in chat.met if n > mark[1] and (each := chat.shown.get(n)) is not None
                       and each.same_text(shown)), None)
        return None if number is None else chat.met.pop(number)

    def found_as(self, chat_id: int, number: int, message_id: int, *, by_another: bool = False) -> None:
        """The lost send ``number`` is on screen as ``message_id`` (``by_another``: met by a search for another). Its
        id known, it is no message an edit could change unawares: counted as unknown for good, it kept every later
        lost send in the chat from being looked for while the question it came after was answered (a part of the
        answer shown twice)."""
        chat = self._chat(chat_id)
        chat.found[number] = message_id
        if by_another:
            chat.met[number] = message_id
            if len(chat.met) > SHOWN_KEPT:
                del chat.met[next(iter(chat.met))]
        self.took(chat_id, message_id)

    def unknown_after(self, chat_id: int, after: int, before: int, limit: int) -> list[int] | None:
        """Up to ``limit`` ids between ``after`` and ``before`` (exclusive) that are no message this process knows in
        the chat, those above the latest lost send's floor first (where that message is), then those from ``after``
        up to it; None when the ids recorded no longer reach back to ``after``."""
        chat = self._chats.get(chat_id)
        if chat is None or chat.dropped > after:
            return None
        known = set(chat.ids)
        floor = min(max(after, chat.floor), before - 1)
        order = chain(range(floor + 1, before), range(after + 1, floor + 1))
        return list(islice((i for i in order if i not in known), limit))


async def find_lost(bot: Bot, sent: SentLog, chat_id: int, since: tuple[int, int], text: str, *, after: int,
                    before: int | None = None, entities: Sequence[MessageEntity] | None = None,
                    markup: InlineKeyboardMarkup | None = None) -> int | None:
    """The id of the message of this bot in the chat whose send lost its answer since ``since`` (it may be on screen,
    its id never known) and which shows ``text`` (with ``entities`` and ``markup``, as it was sent): among the ids
    after ``after`` (the question's, or the message before it; below ``before``) that are no message the bot knows, an
    edit to the same text is refused as "message is not modified" by that message alone — the person's messages
    "can't be edited", another chat's ids and ids no message holds are "not found".

    Other sends in the chat since ``since`` may have lost their answer too (two or three at the same moment: a part and
    a command's reply in one outage, two questions' placeholders). An edit that is "not modified" met a message showing
    this very text (this one, or another lost send showing the same: either stands for it on screen — two lost '…'
    are both deleted, whichever search finds which). A probe's edit that goes through met another lost send, and
    changed it into this text: it is put back at once as it was (its text, entities and buttons, kept when it was
    lost) and counted found for it; its own search then takes that id. Which other it was is told by the message it
    replies to (the edit's answer carries ``reply_to_message``), else by all the others showing the same. Before,
    with a second lost send showing the same text, or two others, nothing was looked for: each was sent again and
    shown twice, a lost '…' stayed above its answer for good. Only a met message that none of the others can be said
    to be stops the search (it is left showing this text; said in the log).

    None when not found: not on screen (a captive portal stopped it), past the ids tried, or not looked for. A try the
    Bot API did not answer (flood control, an outage, a page in its place) is raised: nothing can be said yet."""
    mine = Shown(text, tuple(entities or ()), markup)
    if (met := sent.met_since(chat_id, since, mine)) is not None:
        log.info("telegram: chat %s: a message whose answer was lost was met on screen as message %s", chat_id, met)
        return met
    unfound = sent.unfound_since(chat_id, since)
    others: list[tuple[int, Shown]] = []
    number: int | None = None
    if len(unfound) == 1:
        number = unfound[0][0]
    elif 1 < len(unfound) <= LOST_TOGETHER and all(shown is not None for _, shown in unfound):
        known = [(n, shown) for n, shown in unfound if shown is not None]
        number = next((n for n, shown in known if shown.alike(mine)), None)
        others = [(n, shown) for n, shown in known if not shown.alike(mine)]
    if number is None:
        log.info("telegram: chat %s: a message whose answer was lost is not looked for (other messages of the bot "
                 "there lost their answer too, and what they showed is not known)", chat_id)
        return None
    for message_id in sent.unknown_after(chat_id, after, before or after + 1 + LOST_SPAN, LOST_PROBES) or ():
        try:
            edited = await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, entities=entities,
                                                 reply_markup=markup)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                sent.found_as(chat_id, number, message_id)
                return message_id
            continue  # the person's message, another chat's id, no message
        other = _met(others, edited)
        if other is None:  # cannot happen while every other send is recorded; said, should it ever
            log.warning("telegram: chat %s: message %s was taken for one whose answer was lost and was edited",
                        chat_id, message_id)
            return None
        others.remove(other)
        await _put_back(bot, chat_id, message_id, other[1])
        sent.found_as(chat_id, other[0], message_id, by_another=True)
    log.info("telegram: chat %s: a message whose answer was lost is not on screen (or not found)", chat_id)
    return None


def _met(others: list[tuple[int, Shown]], edited: object) -> tuple[int, Shown] | None:
    """Which of the other lost sends a probe's edit went through on: the one replying to the message the edited one
    replies to, else any of them when all showed the same; None when it cannot be said."""
    if not others:
        return None
    replied = edited.reply_to_message if isinstance(edited, Message) else None
    if replied is not None and len(by_reply := [o for o in others if o[1].reply_to == replied.message_id]) == 1:
        return by_reply[0]
    first = others[0][1]
    return others[0] if all(shown.alike(first) for _, shown in others) else None


async def _put_back(bot: Bot, chat_id: int, message_id: int, shown: Shown) -> None:
    """A probe's edit met another lost message of the bot: it shows again what it was sent with."""
    try:
        await bot.edit_message_text(shown.text, chat_id=chat_id, message_id=message_id,
                                    entities=list(shown.entities) or None, reply_markup=shown.markup)
    except TelegramError as exc:
        if not (isinstance(exc, BadRequest) and "not modified" in str(exc).lower()):
            log.warning("telegram: chat %s: message %s, another message of the bot whose answer was lost, was met by "
                        "a search and could not be put back as it was yet (%s)", chat_id, message_id,
                        type(exc).__name__)
            raise
    log.info("telegram: chat %s: message %s, another message of the bot whose answer was lost, was met by a search "
             "and put back as it was", chat_id, message_id)
