"""What this bot process has sent to each chat: the ids it got back, and how many sends it lost the answer of.

A sendMessage whose answer was lost (a read timeout, a dropped connection, a 504 from Telegram's front) may be on
screen with an id the bot never learns, and the Bot API has no call that finds a message by its text. A placeholder
lost that way stayed above its answer as a bare '…'. To find it (``StreamingReply``) the bot must be sure of every
other message of its own in the chat since the person's question: each one it sent has an id recorded here, and no
other send of that time may have lost its answer. Message ids in a private chat are the bot account's own sequence
across all its chats, not the chat's (tdlib/td#2419: "arithmetic operations must not be performed on message
identifiers"; LonamiWebs/Telethon#1308: unique per channel, otherwise per account) — so nothing is computed from them,
they are only tried and excluded.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from itertools import islice

#: ids kept per chat, and chats kept (least recently written to dropped first)
IDS_KEPT = 512
CHATS_KEPT = 4096


class _Chat:
    __slots__ = ("dropped", "ids", "lost")

    def __init__(self) -> None:
        self.ids: deque[int] = deque(maxlen=IDS_KEPT)
        #: the highest id no longer kept: nothing can be said of the messages up to it
        self.dropped = 0
        self.lost = 0


class SentLog:
    """Per chat: the ids of the messages sent (answer received), and the count of sends whose answer was lost."""

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
        chat = self._chat(chat_id)
        if len(chat.ids) == IDS_KEPT:
            chat.dropped = max(chat.dropped, chat.ids[0])
        chat.ids.append(message_id)

    def lost(self, chat_id: int) -> None:
        self._chat(chat_id).lost += 1

    def mark(self, chat_id: int) -> tuple[int, int]:
        """Where the chat's lost sends stand now; :meth:`only_lost_since` compares against it."""
        chat = self._chats.get(chat_id)
        return (self.forgotten, chat.lost if chat is not None else 0)

    def only_lost_since(self, chat_id: int, mark: tuple[int, int], count: int) -> bool:
        """Exactly ``count`` sends to the chat lost their answer since ``mark``."""
        chat = self._chats.get(chat_id)
        return chat is not None and self.forgotten == mark[0] and chat.lost == mark[1] + count

    def unknown_after(self, chat_id: int, after: int, before: int, limit: int) -> list[int] | None:
        """The first ``limit`` ids between ``after`` and ``before`` (exclusive) that are no message this process sent
        to the chat and got an answer for; None when the ids recorded no longer reach back to ``after``."""
        chat = self._chats.get(chat_id)
        if chat is None or chat.dropped > after:
            return None
        known = set(chat.ids)
        return list(islice((i for i in range(after + 1, before) if i not in known), limit))
