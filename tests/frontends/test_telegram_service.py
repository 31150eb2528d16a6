"""Updates that carry no request: a service message Telegram writes in the chat for something the person did.

A Message update need not be a message someone wrote. Pinning a message, setting the chat's auto-delete timer, a
member joining, a forum topic created: each comes as a ``message`` with no text and no caption, one field saying what
happened (core.telegram.org/bots/api#message). crystal-autobot/autobot#123 ("service messages (a member joining, a
pinned message, a topic created or edited, video chat events) are skipped instead of being answered as empty
messages"). Each test here fails on the code before the fix.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, eventually, final_message, replies_to, running_bot


@pytest.mark.parametrize("service", [
    "pinned_message",  # she pins the bot's answer in her chat with it
    "message_auto_delete_timer_changed",  # she sets the chat's messages to vanish after a day
])
async def test_a_service_message_in_a_private_chat_gets_no_reply(tmp_path, tg: TelegramServer, llm, caplog, service):
    """Alice pinned the bot's answer (or set the chat's auto-delete timer): Telegram wrote its service message in the
    chat, and the bot answered it 'I can only read text messages — please send your request as text.', a reply to
    something she never sent. Nothing is said now, and the chat goes on as before."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        answer = await eventually(final_message(tg, ALICE), 20)
        said = ({k: v for k, v in answer.items() if k != "reply_markup"} if service == "pinned_message"
                else {"message_auto_delete_time": 86400})
        tg.push_service(ALICE, **{service: said})
        await eventually(lambda: not tg.pending_updates, 10)
        await asyncio.sleep(1)  # a reply would come within it
        tg.push_message(ALICE, text="and another thing")
        await eventually(lambda: caplog.text.count("answered by") == 2, 20)
    assert not [r for r in replies_to(tg, ALICE) if "text messages" in r], replies_to(tg, ALICE)
    assert final_message(tg, ALICE)()["text"].startswith(REPLY)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_command_edited_before_the_bot_started_is_not_answered_again(tmp_path, tg: TelegramServer, llm):
    """The bot asks getUpdates for messages and button presses only, but "this parameter doesn't affect updates created
    before the call to getUpdates, so unwanted updates may be received for a short period of time"
    (core.telegram.org/bots/api#getupdates): at its first start on a token, an edit made earlier comes. Alice had sent
    /help (answered by whatever ran the token then) and edited it: the command ran again on the edit, the help shown a
    second time — commands took edited messages (python-telegram-bot's CommandHandler does by default), though an edit
    is never answered again. Now only her new message is answered."""
    config = bot_config(tmp_path, tg, llm)
    sent = tg.push_message(ALICE, text="/help")["message"]
    tg.confirm_all()  # answered and confirmed before this bot ran
    tg.push_update({"edited_message": {**sent, "text": "/help please", "edit_date": int(time.time())}})
    tg.push_update({"edited_message": {**sent, "text": "/hepl", "edit_date": int(time.time()),
                                       "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}})
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 20)
        await asyncio.sleep(1)  # the edits came first: a reply to them would be in by now
    assert final["text"].startswith(REPLY)
    assert replies_to(tg, ALICE) == ["…"], replies_to(tg, ALICE)  # the placeholder, now the answer; no help, no
    # 'Unknown command'
