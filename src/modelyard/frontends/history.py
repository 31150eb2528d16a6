"""Per-conversation history in the routing-log database, kept within a token budget.

Front-ends (Telegram chats, ``modelyard chat``) each name a conversation by
``(frontend, external_id)``. Turns live in the ``turns`` table next to the requests they
produced, so one SQLite file answers "what was said" and "which model said it". The
budget is enforced twice: :meth:`ConversationStore.load` returns only the newest turns
that fit, and :meth:`ConversationStore.append` deletes what can never fit again, so the
table stays small however long a chat runs.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from modelyard.ledger import connect, queries
from modelyard.tokens import message_tokens
from modelyard.types import Message

#: history budget of ``modelyard chat`` (Telegram has its own, ``telegram.history_tokens``)
CHAT_HISTORY_TOKENS = 2000
#: between a conversation's key and its number, for the further conversations of one key (``KEY#2``)
NUMBERED = "#"


@dataclass(slots=True)
class Conversation:
    id: str
    frontend: str
    external_id: str
    #: agent chosen for this conversation (``/agent NAME``); None = automatic routing
    agent: str | None


@dataclass(slots=True)
class Turn:
    seq: int
    role: str
    content: str
    tokens: int
    agent: str | None = None
    model: str | None = None
    request_id: str | None = None


@dataclass(slots=True)
class MessageLink:
    """Which request a front-end message shows, and who asked for it (for ratings)."""

    request_id: str
    user_id: str


class ConversationStore:
    """History, message→request links and ratings, over one SQLite connection.

    Calls are short single statements, cheap enough to make from an event loop.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection = connect(self.path)

    def close(self) -> None:
        self._conn.close()

    # -- conversations -------------------------------------------------------------------

    def conversation(self, frontend: str, external_id: str | int) -> Conversation:
        """The conversation for this chat, created on first use."""
        external = str(external_id)
        row = self._conn.execute(
            "SELECT id, agent FROM conversations WHERE frontend = ? AND external_id = ?", (frontend, external)
        ).fetchone()
        if row is None:
            now = time.time()
            conv_id = secrets.token_hex(8)
            self._conn.execute(
                "INSERT OR IGNORE INTO conversations (id, frontend, external_id, agent, created_at, updated_at)"
                " VALUES (?, ?, ?, NULL, ?, ?)", (conv_id, frontend, external, now, now))
            return self.conversation(frontend, external)  # another process may have won the insert
        return Conversation(row["id"], frontend, external, row["agent"])

    def others(self, frontend: str, external_id: str | int) -> list[Conversation]:
        """The front-end's other conversations that have turns, the most recently used first (not ``external_id``'s
        own numbered ones, :meth:`family`)."""
        key = str(external_id)
        rows = self._conn.execute(
            "SELECT id, external_id, agent FROM conversations c WHERE frontend = ? AND external_id != ?"
            " AND substr(external_id, 1, ?) != ?"
            " AND EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id) ORDER BY updated_at DESC",
            (frontend, key, len(key) + 1, key + NUMBERED)).fetchall()
        return [Conversation(r["id"], frontend, r["external_id"], r["agent"]) for r in rows]

    def family(self, frontend: str, external_id: str) -> list[Conversation]:
        """``external_id``'s conversations — its own and those numbered after it (``KEY#2``, ``KEY#3``: a terminal
        chat started while another held the config's, or ``chat --new``) —, those with turns first, the most recently
        used first (one opened and left without a word is not the one to go on with)."""
        rows = self._conn.execute(
            "SELECT id, external_id, agent FROM conversations c WHERE frontend = ?"
            " AND (external_id = ? OR substr(external_id, 1, ?) = ?)"
            " ORDER BY EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id) DESC, updated_at DESC",
            (frontend, external_id, len(external_id) + 1, external_id + NUMBERED)).fetchall()
        return [Conversation(r["id"], frontend, r["external_id"], r["agent"]) for r in rows]

    def move(self, frontend: str, old_id: str | int, new_id: str | int) -> bool:
        """The chat's conversation (history, agent) now goes on under ``new_id`` — a Telegram group upgraded to a
        supergroup gets a new chat id —, unless one already does there; whether it moved."""
        cur = self._conn.execute(
            "UPDATE conversations SET external_id = ?, updated_at = ? WHERE frontend = ? AND external_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM conversations WHERE frontend = ? AND external_id = ?)",
            (str(new_id), time.time(), frontend, str(old_id), frontend, str(new_id)))
        return cur.rowcount > 0

    def set_agent(self, conversation: Conversation, agent: str | None) -> None:
        self._conn.execute("UPDATE conversations SET agent = ?, updated_at = ? WHERE id = ?",
                           (agent, time.time(), conversation.id))
        conversation.agent = agent

    # -- turns ---------------------------------------------------------------------------

    def turns(self, conversation: Conversation) -> list[Turn]:
        rows = self._conn.execute(
            "SELECT seq, role, content, tokens, agent, model, request_id FROM turns"
            " WHERE conversation_id = ? ORDER BY seq", (conversation.id,)).fetchall()
        return [Turn(r["seq"], r["role"], r["content"], r["tokens"], r["agent"], r["model"], r["request_id"])
                for r in rows]

    def load(self, conversation: Conversation, budget_tokens: int) -> list[Message]:
        """The newest turns whose estimated size fits ``budget_tokens``, oldest first.

        The result never starts with an assistant turn: an answer without its question
        only confuses a model.
        """
        return [Message(t.role, t.content) for t in self._fitting(self.turns(conversation), budget_tokens)]  # type: ignore[arg-type]

    def append(self, conversation: Conversation, role: str, content: str, *, agent: str | None = None,
               model: str | None = None, request_id: str | None = None, keep_tokens: int | None = None) -> None:
        """Add one turn; with ``keep_tokens``, delete older turns that no longer fit that budget."""
        now = time.time()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            seq = self._conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE conversation_id = ?",
                                     (conversation.id,)).fetchone()[0]
            self._conn.execute(
                "INSERT INTO turns (conversation_id, seq, ts, role, content, agent, model, request_id, tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation.id, seq, now, role, content, agent, model, request_id, message_tokens(content)))
            self._conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation.id))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        if keep_tokens is not None:
            self.prune(conversation, keep_tokens)

    def prune(self, conversation: Conversation, budget_tokens: int) -> int:
        """Delete the turns older than what fits ``budget_tokens``; returns how many went."""
        turns = self.turns(conversation)
        kept = self._fitting(turns, budget_tokens)
        if not turns or len(kept) == len(turns):
            return 0
        first_kept = kept[0].seq if kept else turns[-1].seq + 1
        cur = self._conn.execute("DELETE FROM turns WHERE conversation_id = ? AND seq < ?",
                                 (conversation.id, first_kept))
        return cur.rowcount

    def reset(self, conversation: Conversation) -> int:
        """Forget the conversation's turns (its agent choice stays)."""
        return self._conn.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation.id,)).rowcount

    @staticmethod
    def _fitting(turns: list[Turn], budget_tokens: int) -> list[Turn]:
        kept: list[Turn] = []
        used = 0
        for turn in reversed(turns):
            if used + turn.tokens > budget_tokens:
                break
            kept.append(turn)
            used += turn.tokens
        kept.reverse()
        while kept and kept[0].role != "user":
            kept.pop(0)
        return kept

    # -- message links and ratings --------------------------------------------------------

    def link_message(self, frontend: str, chat_id: str | int, message_id: str | int, request_id: str,
                     user_id: str | int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO message_requests (frontend, chat_id, message_id, request_id, user_id)"
            " VALUES (?, ?, ?, ?, ?)", (frontend, str(chat_id), str(message_id), request_id, str(user_id)))

    def message_link(self, frontend: str, chat_id: str | int, message_id: str | int) -> MessageLink | None:
        row = self._conn.execute(
            "SELECT request_id, user_id FROM message_requests WHERE frontend = ? AND chat_id = ? AND message_id = ?",
            (frontend, str(chat_id), str(message_id))).fetchone()
        return MessageLink(row["request_id"], row["user_id"]) if row else None

    def asked_by(self, frontend: str, chat_id: str | int, request_id: str) -> str | None:
        """Who asked for the answer of ``request_id`` in the chat (the user its messages are linked to)."""
        row = self._conn.execute(
            "SELECT user_id FROM message_requests WHERE frontend = ? AND chat_id = ? AND request_id = ? LIMIT 1",
            (frontend, str(chat_id), request_id)).fetchone()
        return row["user_id"] if row else None

    def rate(self, request_id: str, acceptable: bool) -> bool:
        """Write the verdict into the request's routing-log row; False if the row is not there."""
        row = self._conn.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone()
        return row is not None and queries.rate(self._conn, request_id, acceptable) == request_id
