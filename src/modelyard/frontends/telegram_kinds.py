"""What a message carries besides text, as said to the person and the model, and which of its fields are a service
message's (core.telegram.org/bots/api#message).

A story, paid media, a giveaway and its winners were said as "a message" (a forward: "[Forwarded from Bob: a message,
not shown to you]") or, sent alone, answered "I can only read text messages": each is named by its kind — ``story``
("Message is a forwarded story", its ``chat`` the one that posted it), ``paid_media`` ("Message contains paid media";
the bot sees a preview at most), ``giveaway`` ("The message is a scheduled giveaway message"), ``giveaway_winners``
("A giveaway with public winners was completed").

A message python-telegram-bot cannot read whole is kept without the fields it cannot read (telegram.py
``_salvaged``), their names noted under :data:`UNREAD` (kept in the inbox with it): a content field among them is still
named ("I can't see a story"); a service message's field (a gift, a pin, a member joining: "Service message: …" in the
Bot API's Message) means no one asked anything — it was answered "I can only read text messages", as service messages
were before they were told apart (crystal-autobot/autobot#123).
"""

from __future__ import annotations

from telegram import ExternalReplyInfo, Message, Story

#: the key under a salvaged message's ``api_kwargs`` that names the fields left out of it
UNREAD = "modelyard_unread"

#: Message fields that carry something besides text, and how each is said (the first met is said)
ATTACHMENTS = (("photo", "a photo"), ("video", "a video"), ("animation", "a GIF"), ("document", "a file"),
               ("sticker", "a sticker"), ("voice", "a voice message"), ("audio", "an audio file"),
               ("video_note", "a video message"), ("location", "a location"), ("contact", "a contact"),
               ("poll", "a poll"), ("story", "a story"), ("paid_media", "paid media (not visible to the bot)"),
               ("giveaway", "a giveaway announcement"), ("giveaway_winners", "a giveaway's winners announcement"))
HEARD = ("a voice message", "an audio file", "a video message")

#: Message fields the Bot API describes as "Service message: …": a message with one says something happened
SERVICE_FIELDS = frozenset({
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
    "group_chat_created", "supergroup_chat_created", "channel_chat_created", "message_auto_delete_timer_changed",
    "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message", "successful_payment", "refunded_payment",
    "users_shared", "chat_shared", "gift", "unique_gift", "gift_upgrade_sent", "connected_website",
    "write_access_allowed", "proximity_alert_triggered", "boost_added", "chat_background_set",
    "checklist_tasks_done", "checklist_tasks_added", "direct_message_price_changed", "forum_topic_created",
    "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened", "general_forum_topic_hidden",
    "general_forum_topic_unhidden", "giveaway_created", "giveaway_completed", "paid_message_price_changed",
    "suggested_post_approved", "suggested_post_approval_failed", "suggested_post_declined", "suggested_post_paid",
    "suggested_post_refunded", "video_chat_scheduled", "video_chat_started", "video_chat_ended",
    "video_chat_participants_invited", "web_app_data", "chat_owner_left", "chat_owner_changed"})


def unread(message: Message | ExternalReplyInfo) -> frozenset[str]:
    """The fields a salvaged message was taken without (none for a message read whole)."""
    names = message.api_kwargs.get(UNREAD)
    return frozenset(str(n) for n in names) if isinstance(names, list) else frozenset()


def _story(story: object) -> str:
    chat = story.chat if isinstance(story, Story) else None
    name = (chat.title or chat.full_name or (f"@{chat.username}" if chat.username else None)) if chat else None
    return f"a story from {name}" if name else "a story"


def attachment(message: Message | ExternalReplyInfo) -> str | None:
    """What the message carries besides text ("a photo", "a story from Bob"), None for plain text."""
    left_out = unread(message)
    for field, said in ATTACHMENTS:
        value = getattr(message, field, None)
        if value or field in left_out:
            return _story(value) if field == "story" else said
    return None


def service_only(message: Message) -> bool:
    """A salvaged message that was a service message: a service field left out, nothing written kept."""
    return bool(unread(message) & SERVICE_FIELDS) and not (message.text or message.caption)
