"""Messages whose kind was said as "a message" or answered "I can only read text messages": a story, paid media, a
giveaway and its winners (core.telegram.org/bots/api#message: ``story``, ``paid_media``, ``giveaway``,
``giveaway_winners``), and a service message python-telegram-bot could not read whole (kept without the field,
frontends/telegram.py ``_salvaged``). Each test here fails on the code before."""

from __future__ import annotations

import itertools
import logging
import time

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, db, eventually, final_message, replies_to, running_bot

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
PRIVATE = {"id": ALICE, "first_name": "Alice", "type": "private"}
NEWS = {"id": -1_001_777_000_001, "title": "Launch news", "type": "channel", "username": "launchnews"}
BOB_ORIGIN = {"type": "user", "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}}
_IDS = itertools.count(9_500)


def _message(**fields: object) -> dict:
    return {"message_id": next(_IDS), "from": ALICE_USER, "date": int(time.time()), "chat": PRIVATE, **fields}


def _forwarded(**fields: object) -> dict:
    return {"message": _message(forward_origin={**BOB_ORIGIN, "date": int(time.time()) - 3600}, **fields)}


def _done(config) -> bool:
    with db(config) as conn:
        return conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


async def test_a_story_paid_media_and_a_giveaway_forwarded_with_a_comment_are_each_said_by_kind(tmp_path, tg, llm):
    """Alice forwards a story (Story: ``chat`` and ``id``, Bot API 7.1), paid media (PaidMediaInfo: ``star_count``,
    ``paid_media`` — a preview the bot may not open), a giveaway (Giveaway: ``chats``, ``winners_selection_date``,
    ``winner_count``) and its winners (GiveawayWinners), with a comment: each was "[Forwarded from Bob: a message, not
    shown to you]", the model told nothing of what they were. A story sent alone was answered "I can only read text
    messages"; now "I can't see a story from …"."""
    config = bot_config(tmp_path, tg, llm)
    now = int(time.time())
    tg.push_message(ALICE, text="which of these should I share?")
    tg.push_update(_forwarded(story={"chat": NEWS, "id": 41}))
    tg.push_update(_forwarded(paid_media={"star_count": 25, "paid_media": [
        {"type": "preview", "width": 1280, "height": 720}]}))
    tg.push_update(_forwarded(giveaway={"chats": [NEWS], "winners_selection_date": now + 86400, "winner_count": 3}))
    tg.push_update(_forwarded(giveaway_winners={
        "chat": NEWS, "giveaway_message_id": 7, "winners_selection_date": now, "winner_count": 1,
        "winners": [{"id": 333, "is_bot": False, "first_name": "Dan"}]}))
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        tg.push_update({"message": _message(story={"chat": NEWS, "id": 42})})
        await eventually(lambda: any(r.startswith("I can't see a story") for r in replies_to(tg, ALICE)), 20)
    assert final["text"].startswith(REPLY)
    asked = llm.requests[0].json["messages"][-1]["content"]
    assert "[Forwarded from Bob: a story from Launch news, not shown to you]" in asked, asked
    assert "[Forwarded from Bob: paid media (not visible to the bot), not shown to you]" in asked
    assert "[Forwarded from Bob: a giveaway announcement, not shown to you]" in asked
    assert "[Forwarded from Bob: a giveaway's winners announcement, not shown to you]" in asked
    assert "a message, not shown" not in asked
    assert "I can't see a story from Launch news — please send your request as text (a caption on it works too)." \
        in replies_to(tg, ALICE)


async def test_a_service_message_read_without_its_field_is_no_request(tmp_path, tg: TelegramServer, llm, caplog):
    """A self-hosted Bot API server older than 9.3 (``telegram.base_url``) sends a unique gift service message
    (Bot API 9.0 UniqueGiftInfo: "Service message: a unique gift was sent or received") without UniqueGift's
    ``gift_id``, which python-telegram-bot 22 requires since 9.3 (python-telegram-bot#5143): kept without
    ``unique_gift``, it was answered "I can only read text messages" — a reply to something no one asked. Now nothing
    is said to it; a message kept without a field it could not read that has text (a reply to a story, Bot API 6.8's
    ``"story": {}``) is still answered, its text the request (guard: that part was already right)."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    sticker = {"file_id": "CAAC", "file_unique_id": "AgAD", "type": "regular", "width": 512, "height": 512,
               "is_animated": False, "is_video": False}
    gift = {"base_name": "Plush Pepe", "name": "PlushPepe-1", "number": 1,
            "model": {"name": "Cozy", "sticker": sticker, "rarity_per_mille": 10},
            "symbol": {"name": "Heart", "sticker": sticker, "rarity_per_mille": 10},
            "backdrop": {"name": "Navy", "rarity_per_mille": 10, "colors": {
                "center_color": 1, "edge_color": 2, "symbol_color": 3, "text_color": 4}}}
    tg.push_update({"message": _message(unique_gift={"gift": gift, "origin": "upgrade"})})
    tg.push_update({"message": _message(text="what was that story about?", reply_to_story={})})
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
    assert final["text"].startswith(REPLY)
    assert llm.requests[0].json["messages"][-1]["content"].startswith("what was that story about?")
    assert not [r for r in replies_to(tg, ALICE) if r.startswith("I can")], replies_to(tg, ALICE)
    assert "python-telegram-bot cannot read its message's unique_gift" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
