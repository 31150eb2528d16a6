"""Which stored conversation a terminal ``chat`` talks in, held for as long as it runs.

``modelyard chat`` resumes the conversation of its config file. Two chats started with one config (two terminals, a
second window left open) shared it: each sent the other's turns as its own history, and each one's answers came
back in the other's context. Now a running chat holds its conversation (an flock, gone with the process however it
ends); a second chat finds it held and starts a conversation of its own, numbered after the config's (``KEY#2``). The
next chat resumes the most recently used of them (one with turns before one left without a word) — as ``llm -c``
continues the latest — and ``chat --new`` starts a fresh one on purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from modelyard.frontends.history import NUMBERED, Conversation, ConversationStore
from modelyard.paths import hold_exclusive

FRONTEND = "cli"


@dataclass(frozen=True, slots=True)
class Claimed:
    """The conversation's key (for :class:`~modelyard.frontends.session.Session`), the lock's descriptor (close it
    to let go), and what to tell the person of the choice ("" for the usual resume)."""

    external_id: str
    fd: int
    note: str = ""

    def release(self) -> None:
        os.close(self.fd)


def _lock(store: ConversationStore, conversation: Conversation) -> int | None:
    return hold_exclusive(f"{store.path}.chat-{conversation.id}.lock")


def claim(store: ConversationStore, key: str, *, new: bool = False) -> Claimed:
    """The conversation a chat of ``key`` (its config file) talks in: the latest of ``key``'s, unless a running chat
    holds it; then (or with ``new``) a new one numbered after them."""
    family = store.family(FRONTEND, key)
    if not new and family:
        latest = family[0]
        if (fd := _lock(store, latest)) is not None:
            return Claimed(latest.external_id, fd)
    elif not new:  # the first chat of this config
        first = store.conversation(FRONTEND, key)
        if (fd := _lock(store, first)) is not None:
            return Claimed(first.external_id, fd)
    numbers = [int(tail) for c in family if (tail := c.external_id[len(key) + 1:]).isdigit()]
    number = max(numbers, default=1) + 1
    while True:  # another chat may take a number between the look and the lock: the next one then
        external = f"{key}{NUMBERED}{number}"
        conversation = store.conversation(FRONTEND, external)
        if (fd := _lock(store, conversation)) is not None:
            if new:
                return Claimed(external, fd, "a new conversation (`modelyard chat` without --new resumes the latest)")
            return Claimed(external, fd, "another `modelyard chat` of this config is in its conversation: this one "
                                         "starts its own (`chat` resumes the latest one no chat is in)")
        number += 1


def config_of(external_id: str) -> str:
    """The config path of a chat's key (a numbered conversation's key is the path, ``#``, a number)."""
    head, sep, tail = external_id.rpartition(NUMBERED)
    return head if sep and tail.isdigit() else external_id
