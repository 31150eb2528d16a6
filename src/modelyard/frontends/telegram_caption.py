"""A bot command written as a photo's or a file's caption (``/agent writer`` under a photo), or in bold.

Telegram marks it as it does in a text — a ``bot_command`` entity, in ``caption_entities`` (core.telegram.org/bots/
api#message: "special entities like usernames, URLs, bot commands, etc. that appear in the caption"), and @BotFather
itself takes commands so sent (python-telegram-bot#3061). python-telegram-bot's CommandHandler reads ``text`` only,
so the caption reached the model as a request: "/agent writer" was answered by the routed agent, not taken as the
command (F33RNI/GPT-Telegramus#100: the model named in a photo's caption was not the one that answered).

A command typed in bold (or italic, underlined, struck through, as a spoiler) is still a command: the Bot API lets
those entities "contain and … be part of any other entities, except pre and code" (core.telegram.org/bots/api#
formatting-options, MessageEntity's nesting rules), so the message carries the ``bot_command`` entity and, at the same
offset, the bold one — listed first, being the longer. CommandHandler and ``filters.COMMAND`` look at the first entity
only (``message.entities[0].type == MessageEntity.BOT_COMMAND``): "**/agent writer**" went to the model as a request.
A command is the ``bot_command`` entity at offset 0 wherever it is in the list.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity
from telegram.ext import filters


@dataclass(frozen=True)
class CaptionCommand:
    """The command a caption (or a formatted text) opens with: its name (lower case, no ``/`` nor ``@bot``) and the
    words after it (``context.args`` of the same command sent as plain text)."""

    name: str
    args: list[str]


def _opening(text: str | None, entities: tuple[MessageEntity, ...]) -> CaptionCommand | None:
    """The command ``text`` opens with: a ``bot_command`` entity at offset 0, the first in the list or not (a bold
    entity over it comes first) — a command further on is talk, as CommandHandler has it."""
    if not text or not entities:
        return None
    command = next((e for e in entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None)
    if command is None:
        return None
    # offsets and lengths count UTF-16 code units (core.telegram.org/bots/api#messageentity); a command is ASCII
    # ("/[a-z0-9_]{1,32}"), the optional @username too, so the first length characters are the command
    said = text[:command.length]
    return CaptionCommand(said[1:].partition("@")[0].lower(), text[command.length:].split())


def caption_command(message: Message) -> CaptionCommand | None:
    """The command the caption opens with — or the text, where CommandHandler misses it (a formatting entity listed
    before it); None for a message that opens with no command."""
    if message.caption is not None:
        return _opening(message.caption, message.caption_entities)
    entities = message.entities
    if not entities or entities[0].type == MessageEntity.BOT_COMMAND:  # plain: CommandHandler's
        return None
    return _opening(message.text, entities)


class _OpensWithCommand(filters.MessageFilter):
    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return caption_command(message) is not None


#: messages whose caption opens with a bot command, and texts whose command comes after a formatting entity
CAPTION_COMMAND = _OpensWithCommand(name="CaptionCommand")
