"""A reply to a message of another chat: Telegram's "Reply in another chat" (Bot API 7.0).

Such a message has no ``reply_to_message``: it carries ``external_reply`` (core.telegram.org/bots/api#externalreplyinfo:
who wrote the original — ``origin``, a MessageOrigin — and its media, never its text) and, when the person selected
part of it, that part in ``quote`` (#textquote). Only the person's new text reached the model: "what does this mean?"
about a channel's post was a question about nothing (NousResearch/hermes-agent#93722: "quoting a message from a
different chat or channel populates external_reply instead — and the adapter ignored that field entirely").
"""

from __future__ import annotations

from telegram import (
    Message,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
)


def origin_name(origin: MessageOrigin) -> str:
    """Who wrote the original, as the model is told it ("from Bob", "from the channel Venture Capital")."""
    if isinstance(origin, MessageOriginUser):
        return f" from {origin.sender_user.first_name}"
    if isinstance(origin, MessageOriginHiddenUser):
        return f" from {origin.sender_user_name}"
    if isinstance(origin, MessageOriginChat):
        return f" from {origin.sender_chat.title or 'a group'}"
    if isinstance(origin, MessageOriginChannel):
        return f" from the channel {origin.chat.title}" if origin.chat.title else " from a channel"
    return ""


def replied_elsewhere(message: Message, attached: str | None, limit: int) -> str | None:
    """The line the model gets with a reply to another chat's message: the part quoted, cut to ``limit`` characters,
    else what it was (``attached``: "a photo"), said not shown. None when the message is no such reply."""
    external = message.external_reply
    if external is None:
        return None
    # "which may come from another chat or forum topic" (#externalreplyinfo): a forum's own message names this chat
    here = external.chat is not None and external.chat.id == message.chat.id
    who = f"{origin_name(external.origin)} in {'another topic of this chat' if here else 'another chat'}"
    quoted = " ".join((message.quote.text if message.quote is not None else "").split())
    if quoted:
        if len(quoted) > limit:
            quoted = quoted[:limit].rstrip() + "…"
        return f'(This is a reply to a message{who}, quoting: "{quoted}")'
    return f"(This is a reply to {attached or 'a message'}{who}, not shown to you.)"
