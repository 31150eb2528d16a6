"""One lock per chat, kept only while a message of that chat holds or waits for it.

A chat's answers are written in the order its messages came, so each chat has a lock. A bot runs for months and
sees chats come and go (groups it is added to, people who write once): a lock kept for every chat ever seen grew
by one per chat for the life of the process. Here a chat's lock exists while someone holds or waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ChatLocks:
    """Locks by chat id, counted by their users; the last user to leave removes the chat's lock."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def claim(self, chat_id: int) -> asyncio.Lock:
        """The chat's lock, counted as used until :meth:`leave` (acquire it yourself)."""
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        return self._locks.setdefault(chat_id, asyncio.Lock())

    def leave(self, chat_id: int) -> None:
        """Done with the lock :meth:`claim` gave (released already, or never acquired)."""
        left = self._users[chat_id] - 1
        if left:
            self._users[chat_id] = left
        else:
            del self._users[chat_id], self._locks[chat_id]

    @asynccontextmanager
    async def held(self, chat_id: int) -> AsyncIterator[None]:
        """Hold the chat's lock for the block."""
        lock = self.claim(chat_id)
        try:
            async with lock:
                yield
        finally:
            self.leave(chat_id)
