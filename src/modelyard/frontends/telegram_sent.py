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
from itertools import chain, islice

from telegram import Bot, InlineKeyboardMarkup, MessageEntity
from telegram.error import BadRequest

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
#: how far past the message before it a lost message is looked for (its id is above; only unknown ids are tried)
LOST_SPAN = 100_000


class _Chat:
    __slots__ = ("dropped", "floor", "found", "ids", "lost", "top")

    def __init__(self) -> None:
        self.ids: deque[int] = deque(maxlen=IDS_KEPT)
        #: the highest id no longer kept: nothing can be said of the messages up to it
        self.dropped = 0
        self.lost = 0
        #: the lost sends (numbered 1.. in the order lost) since found on screen: their ids are known now
        self.found: set[int] = set()
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

    def lost(self, chat_id: int, floor: int = 0) -> None:
        """A send whose answer was lost, made when ``floor`` was the chat's :meth:`highest`."""
        chat = self._chat(chat_id)
        chat.lost += 1
        chat.floor = floor

    def mark(self, chat_id: int) -> tuple[int, int]:
        """Where the chat's lost sends stand now; :meth:`only_lost_since` compares against it."""
        chat = self._chats.get(chat_id)
        return (self.forgotten, chat.lost if chat is not None else 0)

    def only_lost_since(self, chat_id: int, mark: tuple[int, int], count: int) -> bool:
        """Exactly ``count`` sends to the chat lost their answer since ``mark`` and are not yet found on screen (a
        found one has its id known, and is no longer a message an edit could change unawares)."""
        chat = self._chats.get(chat_id)
        return (chat is not None and self.forgotten == mark[0]
                and sum(1 for n in range(mark[1] + 1, chat.lost + 1) if n not in chat.found) == count)

    def found(self, chat_id: int, mark: tuple[int, int], message_id: int) -> None:
        """The one send lost since ``mark`` and not found before (:meth:`only_lost_since` was 1) is on screen as
        ``message_id``. Counted as unknown for good, it kept every later lost send in the chat from being looked
        for while the question it came after was answered: a part of the answer shown twice."""
        chat = self._chats.get(chat_id)
        if chat is not None and self.forgotten == mark[0]:  # the first not found: any after it was lost since the look
            chat.found.add(next((n for n in range(mark[1] + 1, chat.lost + 1) if n not in chat.found), 0))
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
                    before: int | None = None, entities: list[MessageEntity] | None = None,
                    markup: InlineKeyboardMarkup | None = None) -> int | None:
    """The id of the one message of this bot in the chat whose send lost its answer since ``since`` (it may be on
    screen, its id never known) and which shows ``text`` (with ``entities`` and ``markup``, as it was sent): among the
    ids after ``after`` (the question's, or the message before it; below ``before``) that are no message the bot
    knows, an edit to the same text is refused as "message is not modified" by that message alone — the person's
    messages "can't be edited", another chat's ids and ids no message holds are "not found". None when not found:
    not on screen (a captive portal stopped it), past the ids tried, or not looked for because another send in the
    chat since ``since`` lost its answer too (that one could be edited into this text). A try the Bot API did not
    answer (flood control, an outage, a page in its place) is raised: nothing can be said yet."""
    if not sent.only_lost_since(chat_id, since, 1):
        log.info("telegram: chat %s: a message whose answer was lost is not looked for (another message of the bot "
                 "there lost its answer too)", chat_id)
        return None
    for message_id in sent.unknown_after(chat_id, after, before or after + 1 + LOST_SPAN, LOST_PROBES) or ():
        try:
            await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, entities=entities,
                                        reply_markup=markup)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                sent.found(chat_id, since, message_id)
                return message_id
            continue  # the person's message, another chat's id, no message
        log.warning("telegram: chat %s: message %s was taken for one whose answer was lost and was edited", chat_id,
                    message_id)  # cannot happen while every other send is recorded; said, should it ever
        return None
    log.info("telegram: chat %s: a message whose answer was lost is not on screen (or not found)", chat_id)
    return None
