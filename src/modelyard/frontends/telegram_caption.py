"""A bot command written as a photo's or a file's caption (``/agent writer`` under a photo).

Telegram marks it as it does in a text — a ``bot_command`` entity, in ``caption_entities`` (core.telegram.org/bots/
api#message: "special entities like usernames, URLs, bot commands, etc. that appear in the caption"), and @BotFather
itself takes commands so sent (python-telegram-bot#3061). python-telegram-bot's CommandHandler reads ``text`` only,
so the caption reached the model as a request: "/agent writer" was answered by the routed agent, not taken as the
command (F33RNI/GPT-Telegramus#100: the model named in a photo's caption was not the one that answered).
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity
from telegram.ext import filters


@dataclass(frozen=True)
class CaptionCommand:
    """The command a caption opens with: its name (lower case, no ``/`` nor ``@bot``) and the words after it
    (``context.args`` of the same command sent as text)."""

    name: str
    args: list[str]


def caption_command(message: Message) -> CaptionCommand | None:
    """The command the caption opens with (a ``bot_command`` entity at offset 0, as CommandHandler requires of a
    text), None for a caption that does not open with one — a command further on is talk, as in a text."""
    entities, caption = message.caption_entities, message.caption
    if not caption or not entities:
        return None
    first = entities[0]
    if first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
        return None
    # offsets and lengths count UTF-16 code units (core.telegram.org/bots/api#messageentity); a command is ASCII
    # ("/[a-z0-9_]{1,32}"), the optional @username too, so the first length characters are the command
    command = caption[:first.length]
    return CaptionCommand(command[1:].partition("@")[0].lower(), caption[first.length:].split())


class _OpensWithCommand(filters.MessageFilter):
    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return caption_command(message) is not None


#: messages whose caption opens with a bot command
CAPTION_COMMAND = _OpensWithCommand(name="CaptionCommand")
