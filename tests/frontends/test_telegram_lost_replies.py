"""A Bot API call carried out whose answer never reaches the bot: the connection dropped after Telegram took the
request, or a read timeout. sendMessage has no idempotency key, so sending again shows the message twice
(python-telegram-bot#1045: TimedOut, the message delivered three times by the retries; NousResearch/hermes-agent#5153:
only a connect failure is safe to retry). Each test here fails on the code before the fix."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import pytest
from telegram.error import NetworkError, TimedOut

from modelyard.frontends.streaming import MAX_MESSAGE, maybe_sent
from modelyard.frontends.telegram import UNLINKED
from modelyard.frontends.telegram_request import FrontError
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.frontends.conftest import (
    ALICE,
    BOB,
    LONG,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    replies_to,
    running_bot,
    with_buttons,
)


# 524: Cloudflare's page from a relay set as the bot's base URL (a Worker where Telegram is blocked): it reached the
# origin and gave up waiting ("The connection to the origin web server was made, but the origin web server timed out
# before responding", Cloudflare's 524 page) — the fake carries the call out, then answers that page. invalid_json: a
# relay hands back the Bot API's 200 cut short ('{"ok": true, "result": {"message_id": '), python-telegram-bot's
# 'Invalid server response' (python-telegram-bot#1009): carried out, so not sent again (test_telegram_foreign_pages)
@pytest.mark.parametrize("lost", [Fault.drop_midstream(), Fault.hang_before_headers(), Fault.status(504, html=True),
                                  Fault.status(504), Fault.status(524, html=True), Fault.invalid_json()],
                         ids=["reset", "read_timeout", "504_nginx_page", "504_json", "524_cloudflare_relay",
                              "200_cut_short_by_relay"])
async def test_a_final_message_whose_answer_was_lost_is_not_sent_twice(tmp_path, tg: TelegramServer, long_llm,
                                                                       caplog, lost):
    """The final part of a long answer (the message with 👍/👎) reaches Telegram, its answer is lost: it was sent
    again, and the person saw the end of the answer twice. Now it is sent once, and the log says why. A 504 from
    Telegram's front is such a lost answer (the request was handed on, the front gave up waiting): as nginx's HTML
    page or as JSON, python-telegram-bot's 'Gateway Timeout (504)' was taken like a 502 and the message sent again."""
    assert len(LONG) > MAX_MESSAGE
    config = bot_config(tmp_path, tg, long_llm, edit_interval=30)  # streaming shows the first part only
    tg.lose_reply(lost, when=with_buttons)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="write a long one")
        await eventually(lambda: "answered by" in caplog.text, timeout=20)  # the final message given up or shown
        final = next(c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and c.params.get("reply_markup"))
        tg.push_callback(ALICE, final.result["message_id"], data="rate:1")  # her own answer, its id never came back
        rated = await eventually(lambda: tg.calls_to("answerCallbackQuery"))
    finals = [c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and c.params.get("reply_markup")]
    assert len(finals) == 1, [c.text[:40] for c in finals]
    assert "it may be on screen, so it is not sent again" in caplog.text
    assert rated[0].params.get("text") == UNLINKED  # not "can't be rated by you" about her own answer
    on_screen = [tg.message(ALICE, c.result["message_id"])["text"] for c in tg.calls_to("sendMessage")
                 if c.chat_id == ALICE and c.ok]
    shown = " ".join(text for text in on_screen if text != "…")
    assert "word0 " in shown and "word899" in shown  # the whole answer is on screen, once
    assert shown.count("word899") == 1
    with db(config) as conn:
        assert [r[0] for r in conn.execute("SELECT outcome FROM requests")] == ["ok"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def _raised(error: type[NetworkError], cause: Exception) -> NetworkError:
    """The error as python-telegram-bot raises it: ``raise TimedOut from err`` / ``NetworkError(...) from err``."""
    try:
        raise error("httpx HTTPError") from cause
    except NetworkError as exc:
        return exc


@pytest.mark.parametrize(("error", "maybe"), [
    (_raised(TimedOut, httpx.ReadTimeout("read")), True),  # sent; Telegram may have done it
    (_raised(NetworkError, httpx.RemoteProtocolError("peer closed connection")), True),
    (_raised(NetworkError, httpx.ReadError("reset")), True),
    (_raised(TimedOut, httpx.ConnectTimeout("connect")), False),  # never reached Telegram: safe to send again
    (_raised(NetworkError, httpx.ConnectError("refused")), False),
    (_raised(TimedOut, httpx.PoolTimeout("pool")), False),
    (NetworkError("Bad Gateway"), False),  # Telegram's front answered: not carried out
    (FrontError(502, "Bad Gateway"), False),  # the front could not hand it on
    (FrontError(503, "Service Unavailable"), False),
    (FrontError(504, "Gateway Time-out"), True),  # handed on, the front gave up waiting: it may be in the chat
    (FrontError(522, "Connection timed out"), False),  # a Cloudflare relay that never reached the origin
    (FrontError(524, "A timeout occurred"), True),  # one that reached it and gave up waiting
], ids=["read_timeout", "dropped", "reset", "connect_timeout", "refused", "pool", "502", "front_502", "front_503",
        "front_504", "cloudflare_522", "cloudflare_524"])
def test_which_failures_may_have_reached_telegram(error, maybe):
    assert maybe_sent(error) is maybe


async def test_a_commands_reply_is_sent_again_only_when_telegram_did_not_take_it(tmp_path, tg: TelegramServer, llm):
    """/help's reply refused by Telegram's front (502: nothing done) was lost — a warning in the log, nothing in the
    chat; now it is sent again. One Telegram took, its answer lost, is still sent once."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push(Fault.status(502))  # the next call that can fail: /help's reply
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: any("/agent NAME" in r for r in replies_to(tg, ALICE)), timeout=10)
        tg.lose_reply(Fault.drop_midstream(), when=lambda params: "/status" in str(params.get("text")))
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: len([c for c in tg.calls_to("sendMessage") if "/agent NAME" in (c.text or "")]) >= 3)
        await asyncio.sleep(2)  # a second send would come within the retry's pause
    sent = [c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and "/agent NAME" in (c.text or "")]
    assert [c.ok for c in sent] == [False, True, True], [(c.ok, c.error) for c in sent]  # the 502, its retry, once


# 522: a Cloudflare relay in front (telegram.base_url on a Worker) that could not reach the origin — its own page
@pytest.mark.parametrize("status", [502, 522], ids=["nginx_502", "cloudflare_522"])
async def test_a_reply_refused_by_a_fronts_page_is_sent_again_without_an_error_logged(tmp_path, tg, llm, caplog,
                                                                                      status):
    """Telegram's front answers a down Bot API with nginx's own HTML page (php-telegram-bot/core#353: '<title>502
    Bad Gateway</title> … nginx'). python-telegram-bot logged the whole page with a traceback at ERROR ('Can not load
    invalid JSON data') and put it in the error's text (releases before 22: a bare 'Invalid server response', and the
    reply lost). Now it is the front's 502: nothing was done, the reply is sent again, nothing logged as an error.
    Cloudflare's 52x pages (a relay in front) were still logged so."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push(Fault.status(status, html=True))  # the next call that can fail: /help's reply
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: any("/agent NAME" in r for r in replies_to(tg, ALICE)), timeout=10)
    sent = [c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and "/agent NAME" in (c.text or "")]
    assert [c.ok for c in sent] == [False, True], [(c.ok, c.error) for c in sent]
    assert "<html>" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_placeholder_whose_answer_was_lost_does_not_stay_above_the_answer(tmp_path, tg, llm, caplog):
    """The placeholder's sendMessage reached Telegram and its answer was lost (a 504 from Telegram's front): it is not
    sent again and the answer comes as a new message — the '…' stayed above it for good, its id never known. Now it
    is found (the one id after the question, of no message the bot knows, that an edit to '…' leaves 'not modified')
    and deleted. Another chat's messages take ids in between, as a private chat's ids are the bot's across all its
    chats (tdlib/td#2419); neither they nor the person's question are touched."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.lose_reply(Fault.status(504, html=True), when=lambda p: p.get("text") == "…" and p.get("chat_id") == ALICE)
    async with running_bot(config, tg):
        question = tg.push_message(ALICE, text="hello there")["message"]["message_id"]
        tg.push_message(BOB, text="hello too")
        await eventually(lambda: final_message(tg, ALICE)() and final_message(tg, BOB)(), timeout=20)
        placeholders = [c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and c.text == "…"]
        assert len(placeholders) == 1  # not sent again
        lost = placeholders[0].result["message_id"]
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: tg.message(ALICE, lost) is None, timeout=5)
    assert tg.message(ALICE, lost) is None, "the lost '…' is still on screen above the answer"
    assert tg.message(ALICE, question) is not None
    assert final_message(tg, ALICE)()["text"].startswith(REPLY) and final_message(tg, BOB)()["text"].startswith(REPLY)
    assert not [c for c in tg.calls_to("editMessageText") if c.ok and c.chat_id == BOB and c.text == "…"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_lost_placeholder_is_found_behind_a_burst_of_the_persons_messages(tmp_path, tg, llm, caplog):
    """She sends nine messages at once (a paste split by her client, quick typing): they take the ids after her
    question, before the bot's placeholder — a private chat's ids come from one counter shared by both sides, in the
    order Telegram got the messages (tdlib/td#1378; Pyrogram's "Message identifiers": the receiving account's counter
    numbers each message). The placeholder's sendMessage lost its answer (504). The search tried the six ids after the
    question, all hers ("message can't be edited"), and gave up: the '…' stayed above the answer. Her messages are
    known ids now (taken from getUpdates) and the search begins above the highest id known when the placeholder went:
    the '…' is the first id tried, and none of hers is."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.lose_reply(Fault.status(504, html=True), when=lambda p: p.get("text") == "…")
    async with running_bot(config, tg):
        burst = [tg.push_message(ALICE, text=f"part {i} of my question")["message"]["message_id"] for i in range(9)]
        await eventually(lambda: caplog.text.count("answered by") == len(burst), timeout=30)
        lost = next(c for c in tg.calls_to("sendMessage") if c.text == "…")
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: tg.message(ALICE, lost.result["message_id"]) is None, timeout=5)
    assert tg.message(ALICE, lost.result["message_id"]) is None, "the lost '…' is still on screen above the answer"
    tried = [c.params.get("message_id") for c in tg.calls_to("editMessageText") if c.text == "…"]
    assert tried == [lost.result["message_id"]], tried  # none of her messages
    assert all(tg.message(ALICE, m) is not None for m in burst)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_lost_placeholder_is_found_where_a_reply_beside_it_lost_its_answer_too(tmp_path, tg, llm, caplog):
    """Beside the lost placeholder, /help's reply in the same chat lost its answer too (one outage, two 504s: the
    front gave up waiting on both, php-telegram-bot/core#353). Either could be the message an edit to '…' finds, so
    neither was looked for and the '…' stayed above the answer for good. Each lost send's text is kept: an edit to
    '…' is "not modified" on the placeholder alone, and one that goes through met the help, which is put back as it
    was at once. The '…' is found and deleted; the help reads as it was sent."""
    caplog.set_level(logging.INFO)
    config = bot_config(tmp_path, tg, llm, edit_interval=0.5)
    tg.lose_reply(Fault.status(504, html=True), when=lambda p: p.get("text") == "…")
    tg.lose_reply(Fault.status(504, html=True), when=lambda p: "/agent NAME" in str(p.get("text")))
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/help")  # its reply goes out first: the search for the '…' meets it first
        tg.push_message(ALICE, text="hello there")
        await eventually(final_message(tg, ALICE), timeout=20)
        placeholder = next(c for c in tg.calls_to("sendMessage") if c.text == "…")
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: tg.message(ALICE, placeholder.result["message_id"]) is None, timeout=5)
    help_reply = next(c for c in tg.calls_to("sendMessage") if "/agent NAME" in (c.text or ""))
    assert tg.message(ALICE, help_reply.result["message_id"])["text"] == help_reply.text
    assert tg.message(ALICE, placeholder.result["message_id"]) is None, "the lost '…' is still above the answer"
    assert len([c for c in tg.calls_to("sendMessage") if "/agent NAME" in (c.text or "")]) == 1
    assert "put back as it was" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_streamed_part_whose_answer_was_lost_gets_the_final_text(tmp_path, tg, caplog):
    """While a long answer streams, the sendMessage of its second part reaches Telegram and the connection drops:
    its id is never known, so it could not be edited — it stayed with the text it had then, and the final part
    went out as a new message below it: the answer's end shown twice, once cut off. It is found now (as a lost
    placeholder is) and the final text, with the buttons, is edited into it."""
    caplog.set_level(logging.INFO)
    with OpenAIServer(reply_text=LONG, chunk_interval=0.002) as llm:
        config = bot_config(tmp_path, tg, llm)
        tg.lose_reply(Fault.drop_midstream(), when=lambda p: (p.get("text") != "…" and not p.get("reply_markup")
                                                               and not str(p.get("text")).startswith("word0 ")))
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="write a long one")
            await eventually(lambda: "answered by" in caplog.text, timeout=30)
    lost = next(c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and c.text != "…"
                and not c.text.startswith("word0 "))
    assert not lost.params.get("reply_markup")
    shown = tg.message(ALICE, lost.result["message_id"])
    assert "word899\n" in shown["text"] and shown.get("reply_markup"), shown["text"][-60:]
    texts = [m["text"] for (chat, _), m in tg._messages.items() if chat == ALICE and m["from"]["is_bot"]]
    assert " ".join(texts).count("word899") == 1 and len(texts) == 2, [t[:30] for t in texts]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_the_final_message_waits_out_flood_control_an_edit_met(tmp_path, tg, caplog):
    """Flood control answered a streamed edit (429, retry_after): the final message was tried at once all the same —
    refused again, the wait counting down (agno-agi/agno#7360: 'retry after 33', '32', '32' to a bot that retried at
    once), one more refusal counted against the chat. It waits for retry_after now: one refused call, then the
    answer."""
    caplog.set_level(logging.INFO)
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(40)), chunk_interval=0.01) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.flood(3, chat_id=ALICE)  # the answer is written in ~0.4 s: within it
            tg.push_message(ALICE, text="hello there")
            await eventually(lambda: "answered by" in caplog.text, timeout=20)
    refused = [c for c in tg.calls if not c.ok and c.chat_id == ALICE]
    assert [c.method for c in refused] == ["sendMessage"], [(c.method, c.error) for c in refused]
    assert final_message(tg, ALICE)()["text"].startswith("w0 w1")


async def test_a_commands_reply_that_cannot_be_delivered_is_said_to_be_lost(tmp_path, tg, llm, caplog):
    """/help's reply met Telegram's front down three times (502: nothing carried out, tried again each time) and was
    given up: the log said only 'telegram: FrontError: Bad Gateway (502)' — nothing about a reply lost. It says now
    which chat lost a reply, that it is not tried again, and why, without a traceback; the bot goes on."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        for _ in range(3):
            tg.push(Fault.status(502, html=True))  # the next three calls that can fail: /help's reply, three times
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: "could not be delivered" in caplog.text, timeout=10)
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: any("/agent NAME" in r for r in replies_to(tg, ALICE)), timeout=10)
    assert "chat 111: a reply (" in caplog.text and "is not tried again (FrontError: Bad Gateway (502))" in caplog.text
    assert "<html>" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
