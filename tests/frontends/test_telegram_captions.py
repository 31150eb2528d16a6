"""A bot command written as a photo's caption.

Telegram marks a command in a caption as in a text: a ``bot_command`` entity, in ``caption_entities``
(core.telegram.org/bots/api#message), and @BotFather takes commands so sent (python-telegram-bot#3061).
python-telegram-bot's CommandHandler reads ``text`` only, so "/agent engineer" under a photo went to the model as a
request (F33RNI/GPT-Telegramus#100: "the second message is still sent to chat gpt instead of bard … because the
CommandHandler doesn't catch commands in the caption").
"""

from __future__ import annotations

import asyncio
import logging
import time

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, eventually, final_message, replies_to, running_bot

GROUP = -4_000_000_016
NOW_ENGINEER = "Now talking to engineer directly."


async def test_a_command_as_a_photos_caption_is_carried_out_not_asked_of_a_model(tmp_path, tg: TelegramServer, llm,
                                                                              caplog):
    """Alice sends a screenshot captioned "/agent engineer": the agent is chosen (the command's reply, and a line
    saying the photo was not read), no model runs, and her next message is answered by the engineer. Before, the
    caption was a request: the chat agent answered "/agent engineer (The person attached a photo …)"."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_photo(ALICE, caption="/agent engineer")
        await eventually(lambda: any(r.startswith(NOW_ENGINEER) for r in replies_to(tg, ALICE)), 20)
        await eventually(lambda: any("can't see a photo" in r for r in replies_to(tg, ALICE)), 10)
        assert not llm.requests
        tg.push_message(ALICE, text="why does my loop never end?")
        final = await eventually(final_message(tg, ALICE), 30)
    assert final["text"].startswith(REPLY) and "engineer" in final["text"]
    assert len(llm.requests) == 1
    assert "/agent" not in str(llm.requests[0].json["messages"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_album_captioned_with_a_command_gets_no_reply_for_its_other_photos(tmp_path, tg: TelegramServer,
                                                                                   llm):
    """The command on an album's first photo: the album's other items (no caption) are no request of their own.
    They got "I can't see an album of 2 items …" after the command was carried out."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_photo(ALICE, caption="/agent engineer", media_group_id="ALB16")
        tg.push_photo(ALICE, media_group_id="ALB16")
        tg.push_photo(ALICE, media_group_id="ALB16")
        await eventually(lambda: any(r.startswith(NOW_ENGINEER) for r in replies_to(tg, ALICE)), 20)
        await eventually(lambda: not tg.pending_updates, 10)
        await asyncio.sleep(2.5)  # the album's gathering window (1 s) is over: a reply to the rest would be in
    assert not [r for r in replies_to(tg, ALICE) if "album" in r], replies_to(tg, ALICE)
    assert not llm.requests


async def test_a_caption_command_for_another_bot_is_left_alone_and_one_further_on_is_talk(tmp_path, tg: TelegramServer,
                                                                                         llm):
    """In a group, "/status@other_bot" under a photo is another bot's: not answered (as the same text is not). And a
    caption that only mentions a command further on ("is /status broken?", entity at offset > 0) is a request, as a
    text would be — guards beside the fix: CommandHandler takes a command at offset 0 only."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_photo(ALICE, GROUP, caption="/status@other_bot")
        await eventually(lambda: not tg.pending_updates, 10)
        tg.push_photo(ALICE, caption="is /status broken here?",
                      caption_entities=[{"type": "bot_command", "offset": 3, "length": 7}])
        final = await eventually(final_message(tg, ALICE), 30)
        await asyncio.sleep(0.5)
    assert replies_to(tg, GROUP) == []
    assert final["text"].startswith(REPLY)
    assert "is /status broken here?" in llm.requests[0].json["messages"][-1]["content"]


async def test_a_command_in_bold_is_carried_out_in_a_caption_and_in_a_text(tmp_path, tg: TelegramServer, llm):
    """"**/agent engineer**" under a photo — bold over the command and its argument. The Bot API lets bold, italic,
    underline, strikethrough and spoiler entities "contain and can be part of any other entities, except pre and code"
    (core.telegram.org/bots/api#formatting-options; MessageEntity, core.telegram.org/bots/api#messageentity), so the
    message carries both, the longer bold one first at offset 0 (tdlib's entity order: by offset, then longer first).
    The command was read from the first entity only, as python-telegram-bot's CommandHandler and filters.COMMAND do
    (``message.entities[0].type == MessageEntity.BOT_COMMAND``): the caption, and the same text in italics, went to
    the model as a request. Now each is carried out; the photo is said not read, and no model runs."""
    config = bot_config(tmp_path, tg, llm)
    bold = [{"type": "bold", "offset": 0, "length": 15}, {"type": "bot_command", "offset": 0, "length": 6}]
    async with running_bot(config, tg):
        tg.push_photo(ALICE, caption="/agent engineer", caption_entities=bold)
        await eventually(lambda: any(r.startswith(NOW_ENGINEER) for r in replies_to(tg, ALICE)), 20)
        await eventually(lambda: any("can't see a photo" in r for r in replies_to(tg, ALICE)), 10)
        tg.push_update({"message": {"message_id": 9_001, "from": {"id": ALICE, "is_bot": False, "first_name": "A"},
                                    "chat": {"id": ALICE, "first_name": "A", "type": "private"},
                                    "date": int(time.time()),
                                    "text": "/agent", "entities": [{"type": "italic", "offset": 0, "length": 6},
                                                                   {"type": "bot_command", "offset": 0,
                                                                    "length": 6}]}})
        await eventually(lambda: "Back to automatic routing." in replies_to(tg, ALICE), 20)
        await asyncio.sleep(0.5)
    assert not llm.requests
    assert not [r for r in replies_to(tg, ALICE) if r.startswith(REPLY)]
