"""An update python-telegram-bot cannot read, in a batch with others. The library reads a getUpdates batch whole: one
update it cannot read fails it, its Updater logs the raw batch at CRITICAL (every message's text in it) and asks
again at the same offset — the same batch, for good: nothing after it is ever handled. bot4s/telegram#119: "My bot
tried to get update, failed each time and tried again many times. I fixed this by writing primitive bot in python,
which consumed this update"; bot4s/telegram#144: "the parser would fail and cause the bot to stop parsing new
messages". Each test here fails on the code before."""

from __future__ import annotations

import logging
import time

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, db, eventually, final_message, replies_to, running_bot

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Modelyard Test", "username": "modelyard_test_bot"}
GROUP = -1_001_555_000_001


def _private(message_id: int, **fields: object) -> dict:
    return {"message_id": message_id, "from": ALICE_USER, "date": int(time.time()),
            "chat": {"id": ALICE, "first_name": "Alice", "type": "private"}, **fields}


def _done(config) -> bool:
    with db(config) as conn:
        return conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


async def test_a_message_the_library_cannot_read_does_not_hold_up_its_batch(tmp_path, tg: TelegramServer, llm, caplog):
    """Alice forwards a story, then asks a question. Bot API 6.8 sent a forwarded story as ``"story": {}`` —
    "Currently, it holds no information" (core.telegram.org/bots/api#august-18-2023; fizruk/telegram-bot-simple#160),
    as a self-hosted Bot API server of that time (``telegram.base_url``) still does — and python-telegram-bot 22
    requires the chat and id 7.1 added: its batch failed, for good, and her question was never answered. Now the
    message is read without the story (she is told the bot cannot see a story), and her question is answered."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.push_update({"message": _private(9_101, story={})})
    tg.push_update({"message": _private(9_102, text="hello there")})
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: any(r.startswith("I can't see a story") for r in replies_to(tg, ALICE)), 10)
        await eventually(lambda: _done(config), 10)
    assert final["text"].startswith(REPLY)
    assert "update 1: python-telegram-bot cannot read its message's story" in caplog.text
    assert "Error while parsing updates" not in caplog.text and "hello there" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_update_of_another_kind_the_library_cannot_read_is_passed_over(tmp_path, tg: TelegramServer, llm,
                                                                              caplog):
    """The bot is restricted in a group: a ``my_chat_member`` update, its new ChatMemberRestricted without the newest
    permission field — the omission aiogram/aiogram#1812 reports of Telegram ("the Telegram API sometimes omits the
    can_react_to_messages field for restricted members"; the update failed to parse and the dispatcher with it), here
    the newest one python-telegram-bot 22.8 requires (``can_edit_tag``). It comes though the bot asks for messages
    and button presses only: allowed_updates "doesn't affect updates created before the call"
    (core.telegram.org/bots/api#getupdates). It is passed over, said in the log; Alice's question in the same batch is
    answered."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    rights = dict.fromkeys(("is_member", "can_change_info", "can_invite_users", "can_pin_messages",
                            "can_send_messages", "can_send_polls", "can_send_other_messages",
                            "can_add_web_page_previews", "can_manage_topics", "can_send_audios", "can_send_documents",
                            "can_send_photos", "can_send_videos", "can_send_video_notes", "can_send_voice_notes"),
                           False)
    tg.push_update({"my_chat_member": {
        "chat": {"id": GROUP, "title": "Team", "type": "supergroup"}, "from": ALICE_USER, "date": int(time.time()),
        "old_chat_member": {"status": "member", "user": BOT_USER},
        "new_chat_member": {"status": "restricted", "user": BOT_USER, "until_date": 0, **rights}}})
    tg.push_update({"message": _private(9_201, text="hello there")})
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
        tg.push_update({"message": _private(9_202, text="and again")})  # polling goes on past it
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]) > 1,
                         20)
    assert final["text"].startswith(REPLY)
    assert "update 1 (my_chat_member) cannot be read by python-telegram-bot (TypeError); passed over" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_checklist_sent_to_the_bot_is_read_as_text(tmp_path, tg: TelegramServer, llm):
    """Alice sends a checklist (Bot API 9.1, Message.checklist: a title and tasks, each done or not —
    core.telegram.org/bots/api#checklist, #checklisttask). It has no text nor caption, so it was answered "I can only
    read text messages", though it is all text; other bots drop it without a word (NousResearch/hermes-agent#78749:
    "a checklist shared with the bot … produces no event and no log line"). The model now gets it as a checklist."""
    config = bot_config(tmp_path, tg, llm)
    checklist = {"title": "Launch", "tasks": [
        {"id": 1, "text": "write the changelog", "completed_by_user": ALICE_USER, "completion_date": int(time.time())},
        {"id": 2, "text": "tag the release"}]}
    async with running_bot(config, tg):
        tg.push_update({"message": _private(9_301, checklist=checklist)})
        final = await eventually(final_message(tg, ALICE), 20)
    assert final["text"].startswith(REPLY)
    assert llm.requests[0].json["messages"][-1]["content"] == (
        "[Checklist: Launch]\n- [x] write the changelog\n- [ ] tag the release")
    assert not [r for r in replies_to(tg, ALICE) if r.startswith("I can only read text")]
