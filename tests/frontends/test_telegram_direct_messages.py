"""A channel's direct messages chat (Bot API 9.2, core.telegram.org/bots/api-changelog#august-15-2025).

A channel may take direct messages; a bot administering the channel receives them. The chat is a supergroup with
``is_direct_messages`` (core.telegram.org/bots/api#chat), each person's messages in a topic of it
(``direct_messages_topic``, #message), and a send there must name the topic (``direct_messages_topic_id``; without it
"Bad Request: channel direct messages topic must be specified"). People there write to the channel, not to the bot,
and one chat holds every person's conversation: Chevalet/chevaletAnonBot#32 ("bot replies landed in someone else's
inbox") ignores such chats; so does this bot, and its log says why once.
"""

from __future__ import annotations

import asyncio
import logging

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, BOB, REPLY, bot_config, eventually, final_message, running_bot

DIRECT = -1_002_000_000_092
BOT = "@modelyard_test_bot"


async def test_a_channels_direct_messages_are_not_answered_and_the_log_says_why(tmp_path, tg: TelegramServer, llm,
                                                                              caplog):
    """Alice and Bob (both allowed) write to the channel the bot administers — a command, a mention, a plain line.
    Before, the command was answered in Alice's topic as the channel, and a mention ran the model, its "…" refused
    for want of a topic. Now nothing is sent there and no model runs; one warning names the chat; a private chat is
    answered as ever."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_direct_message(ALICE, DIRECT, "/status")
        tg.push_direct_message(ALICE, DIRECT, f"{BOT} what is new in the release?")
        tg.push_direct_message(BOB, DIRECT, "hi, when is the next post?")
        await eventually(lambda: not tg.pending_updates, 10)
        await asyncio.sleep(1.5)  # a reply or a model run would have begun
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
    assert not [c for c in tg.calls if c.chat_id == DIRECT], [c.method for c in tg.calls if c.chat_id == DIRECT]
    assert len(llm.requests) == 1 and final["text"].startswith(REPLY)
    said = [r for r in caplog.records if "direct messages chat" in r.getMessage()]
    assert len(said) == 1 and str(DIRECT) in said[0].getMessage() and said[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
