"""Several sends in one chat lose their answer at once (frontends/telegram_sent.find_lost): one outage takes the
answers of a command's reply, another's and a placeholder (php-telegram-bot/core#353: the front gave up waiting on
each, 504, after the Bot API had taken them), or of two questions' placeholders, both '…'. The search for one of
them was made only with a single other lost send, and only one whose text differed: with two showing the same text,
or three at once, nothing was looked for — each reply sent again and shown twice, each lost '…' left above its answer
for good. Each test here fails on the code before."""

from __future__ import annotations

from telegram.error import NetworkError

from modelyard.frontends.telegram import InboxBot
from modelyard.frontends.telegram_sent import find_lost
from tests.fakes import Fault, TelegramServer
from tests.frontends.conftest import ALICE

HELP, STATUS, PLACEHOLDER = "Send me a task and I'll route it.", "Models: local (ok)", "…"


async def _lost(bot: InboxBot, tg: TelegramServer, text: str, reply_to: int) -> int:
    """Send ``text`` in reply to ``reply_to``: carried out, its answer lost (the front's 504 page); its id, as the
    fake knows it."""
    tg.lose_reply(Fault.status(504, html=True), when=lambda p: p.get("text") == text)
    try:
        await bot.send_message(ALICE, text, reply_to_message_id=reply_to)
    except NetworkError:
        pass
    else:
        raise AssertionError("the send's answer was not lost")
    return next(c for c in reversed(tg.calls_to("sendMessage")) if c.text == text).result["message_id"]


async def _bot(tg: TelegramServer) -> InboxBot:
    bot = InboxBot(tg.token, tg.base_url, None)  # type: ignore[arg-type]  # no getUpdates here: no inbox
    await bot.initialize()
    return bot


def _question(bot: InboxBot, tg: TelegramServer, text: str) -> int:
    message_id = tg.push_message(ALICE, text=text)["message"]["message_id"]
    bot.sent.took(ALICE, message_id)  # taken from getUpdates: a known id
    return message_id


async def test_two_lost_placeholders_showing_the_same_text_are_both_found():
    """Two questions, each answer's '…' lost (504 after the Bot API took it). The two show the same text, so an edit
    to '…' is "not modified" on either: neither was looked for and both stayed on screen. Either stands for the
    other: each search now finds one, and the two find both."""
    with TelegramServer() as tg:
        bot = await _bot(tg)
        try:
            since = bot.sent.mark(ALICE)
            first, second = _question(bot, tg, "what is 2+2?"), _question(bot, tg, "and 3+3?")
            shown = {await _lost(bot, tg, PLACEHOLDER, first), await _lost(bot, tg, PLACEHOLDER, second)}
            found = {await find_lost(bot, bot.sent, ALICE, since, PLACEHOLDER, after=first),
                     await find_lost(bot, bot.sent, ALICE, since, PLACEHOLDER, after=first)}
        finally:
            await bot.shutdown()
    assert found == shown


async def test_three_sends_lost_at_once_each_is_found_and_the_others_put_back():
    """/help's and /status's replies and the next question's '…' all lose their answer in one outage. The search for
    the '…' meets the two replies first: each edit goes through, and which of the two it met is told by the message it
    replies to (the edit's answer carries reply_to_message, core.telegram.org/bots/api#message) — put back as it was
    sent. Before, with three lost, nothing was looked for."""
    with TelegramServer() as tg:
        bot = await _bot(tg)
        try:
            since = bot.sent.mark(ALICE)
            asked = [_question(bot, tg, text) for text in ("/help", "/status", "hello there")]
            help_id = await _lost(bot, tg, HELP, asked[0])
            status_id = await _lost(bot, tg, STATUS, asked[1])
            placeholder = await _lost(bot, tg, PLACEHOLDER, asked[2])
            found = await find_lost(bot, bot.sent, ALICE, since, PLACEHOLDER, after=asked[2])
            found_status = await find_lost(bot, bot.sent, ALICE, since, STATUS, after=asked[1])
            found_help = await find_lost(bot, bot.sent, ALICE, since, HELP, after=asked[0])
        finally:
            await bot.shutdown()
    assert (found, found_status, found_help) == (placeholder, status_id, help_id)
    assert tg.message(ALICE, help_id)["text"] == HELP
    assert tg.message(ALICE, status_id)["text"] == STATUS
    assert tg.message(ALICE, placeholder)["text"] == PLACEHOLDER
