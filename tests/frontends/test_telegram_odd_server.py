"""A Bot API server that answers in shapes the fake did not: ``ok`` with no ``result``, one update twice in a batch,
update kinds the bot did not ask for. Each end to end: the person's message is answered (once), no traceback, no
flood of retries, the bot token in no log line, the next message fine."""

from __future__ import annotations

import logging
import time

import pytest

from tests.fakes import TelegramServer
from tests.frontends.conftest import ALICE, REPLY, bot_config, db, eventually, final_message, running_bot

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
CHAT = {"id": ALICE, "first_name": "Alice", "type": "private"}
CHANNEL = {"id": -1_001_000_000_077, "type": "channel", "title": "News"}
SIGNED = "— chat · local"  # the foot of a finished answer


def _private(message_id: int, **fields: object) -> dict:
    return {"message_id": message_id, "from": ALICE_USER, "date": int(time.time()), "chat": CHAT, **fields}


def _done(config) -> bool:
    with db(config) as conn:
        return conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


def _answers(tg: TelegramServer) -> list[str]:
    """The finished answers in Alice's chat (their last render: with the foot)."""
    return [c.text for c in tg.calls if c.chat_id == ALICE and c.ok and SIGNED in (c.text or "")]


def _clean(caplog, token: str) -> None:
    """No traceback, no ERROR, and the token (it is in the URL path: /bot<token>/method) in no line."""
    assert token not in caplog.text and token.split(":", 1)[1] not in caplog.text
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, bad


@pytest.mark.parametrize("body", [b'{"ok":true}', b'{"ok":true,"result":null}', b'{"ok":true,"result":true}'],
                         ids=["no_result", "null_result", "true_result"])
async def test_a_send_answered_ok_without_its_message_is_still_answered(tmp_path, tg: TelegramServer, llm, caplog,
                                                                        body):
    """Regression guard. "If 'ok' equals True, the request was successful and the result of the query can be found
    in the 'result' field" (core.telegram.org/bots/api#making-requests). A relay or self-hosted server that answers a
    sendMessage it carried out with ``{"ok": true}`` — the result missing, null, or ``true`` (the shape of other
    methods) — made python-telegram-bot 22 raise a bare KeyError (``BaseRequest.post``: ``json_data["result"]``) or
    AttributeError: the turn failed with a traceback, the '…' stayed on screen and the question was never answered.
    Now it counts as carried out with its answer lost: the placeholder is found and the question answered."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.garble_reply(lambda _: body, method="sendMessage")
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
        tg.push_message(ALICE, text="and again")
        await eventually(lambda: len(_answers(tg)) >= 2, 20)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 2  # each question asked once
    assert len(tg.calls_to("sendMessage")) <= 4  # no flood: a placeholder (maybe twice) per question
    _clean(caplog, tg.token)


@pytest.mark.parametrize("body", [b'{"ok":true}', b'{"ok":true,"result":null}'], ids=["no_result", "null_result"])
async def test_a_poll_answered_ok_without_updates_loses_nothing(tmp_path, tg: TelegramServer, llm, caplog, body):
    """getUpdates answered ``{"ok": true}`` with no ``result`` (core.telegram.org/bots/api#making-requests, as above):
    nothing was confirmed, so the next poll brings the message; it is answered once, one warning at most."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.push_message(ALICE, text="hello there")
    tg.garble_reply(lambda _: body, method="getUpdates")
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) <= 1
    _clean(caplog, tg.token)


async def test_one_update_twice_in_a_batch_is_answered_once(tmp_path, tg: TelegramServer, llm, caplog):
    """Regression guard. The update id "allows you to ignore repeated updates or to restore the correct update
    sequence, should they get out of order" (core.telegram.org/bots/api#update). A server (or a relay retrying its
    upstream call) that hands one update back twice in one batch got two answers to one message from the bot: both
    copies were taken as new, the model asked twice, the second answer cut short at stop ('[answer stopped — …]')."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.resend(tg.push_message(ALICE, text="hello there"))
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
        tg.push_message(ALICE, text="and again")
        await eventually(lambda: b"and again" in llm.requests[-1].body and len(_answers(tg)) >= 2, 20)
        await eventually(lambda: _done(config), 10)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 2
    assert len([c for c in tg.calls_to("sendMessage") if c.text == "…"]) == 2
    assert "answer stopped" not in " ".join(c.text or "" for c in tg.calls)
    _clean(caplog, tg.token)


async def test_kinds_not_asked_for_are_passed_over_quietly(tmp_path, tg: TelegramServer, llm, caplog):
    """Regression guard. allowed_updates "doesn't affect updates created before the call to getUpdates, so unwanted
    updates may be received for a short period of time" (core.telegram.org/bots/api#getupdates), and a relay or
    self-hosted server may ignore it: a channel post, a reaction (Bot API 7.0 ``message_reaction``), a business
    message (7.2 ``business_message``), edits. None is answered or runs a model; a channel post was logged as a
    WARNING 'ignored update from user unknown (not in telegram.allowed_users)' — an owner went looking for a user to
    allow. Now one INFO line each naming the kind; Alice's message after them is answered."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    now = int(time.time())
    tg.push_update({"edited_message": _private(5, text="edited hi", edit_date=now)})
    tg.push_update({"channel_post": {"message_id": 6, "date": now, "text": "news", "chat": CHANNEL}})
    tg.push_update({"edited_channel_post": {"message_id": 6, "date": now, "edit_date": now, "text": "news!",
                                            "chat": CHANNEL}})
    tg.push_update({"business_message": {**_private(7, text="biz hi"), "business_connection_id": "bc1"}})
    tg.push_update({"message_reaction": {"chat": CHAT, "message_id": 7, "user": ALICE_USER, "date": now,
                                         "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}})
    tg.push_update({"message": _private(9, text="hello there")})
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 1 and len(tg.calls_to("sendMessage")) == 1
    assert "not in telegram.allowed_users" not in caplog.text
    for kind in ("channel_post", "message_reaction", "business_message", "edited_message"):
        assert f"({kind}) is of a kind the bot does not handle" in caplog.text
    assert "news" not in caplog.text and "biz hi" not in caplog.text  # kinds said, never what they carried
    _clean(caplog, tg.token)


FLOOD_AT_200 = (b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1",'
                b'"parameters":{"retry_after":1}}')


@pytest.mark.parametrize("method", ["getUpdates", "sendMessage", "editMessageText"])
async def test_a_refusal_answered_200_is_taken_as_the_refusal_it_is(tmp_path, tg: TelegramServer, llm, caplog, method):
    """Regression guard. The envelope "always has a Boolean field 'ok'"; when false, "'error_code' … and
    'parameters' … can help to automatically handle the error" — retry_after for flood control
    (core.telegram.org/bots/api#making-requests, #responseparameters). A relay that passes a 429 on under its own
    200 made python-telegram-bot raise a bare KeyError (``json_data["result"]``), not RetryAfter: a sendMessage so
    answered failed the turn with a traceback and the question went unanswered. Now it is the flood wait it says."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    if method == "sendMessage":  # refused, not carried out: the relay's 200 in the Bot API's place
        tg.intercept(FLOOD_AT_200.decode(), method=method)
    else:  # carried out (an edit again changes nothing; updates are not confirmed by it), its answer the refusal
        tg.garble_reply(lambda _: FLOOD_AT_200, method=method)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: _done(config), 10)
        tg.push_message(ALICE, text="and again")
        await eventually(lambda: b"and again" in llm.requests[-1].body and len(_answers(tg)) >= 2, 20)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 2
    _clean(caplog, tg.token)
    sent = [c for c in tg.calls_to("sendMessage") if c.ok and c.chat_id == ALICE]
    assert len(sent) == 2, [c.text for c in sent]  # a message per question: no '…' left behind, none twice


async def test_a_batch_out_of_order_is_answered_in_the_order_sent(tmp_path, tg: TelegramServer, llm, caplog):
    """Regression guard. The update id "allows you to … restore the correct update sequence, should they get out of
    order" (core.telegram.org/bots/api#update). A server that hands Alice's two messages back in one batch, the later
    first, got them answered (and into her history) in that order: the second question before the first."""
    config = bot_config(tmp_path, tg, llm)
    caplog.set_level(logging.INFO)
    tg.push_message(ALICE, text="first question")
    tg.push_message(ALICE, text="second question")
    with tg._state:
        tg._updates.reverse()
    async with running_bot(config, tg):
        await eventually(lambda: len(llm.requests) == 2 and len(_answers(tg)) == 2, 20)
        await eventually(lambda: _done(config), 10)
    assert b"second question" not in llm.requests[0].body  # asked first, the first alone
    assert b"second question" in llm.requests[1].body
    _clean(caplog, tg.token)


@pytest.mark.parametrize("written", ["{url}", "{url}/", "{url}/bot/"], ids=["host", "host_slash", "bot_slash"])
async def test_the_servers_address_without_its_bot_prefix_still_reaches_it(tmp_path, tg: TelegramServer, llm, caplog,
                                                                           written):
    """Regression guard. Every request is "presented in this form: https://api.telegram.org/bot<token>/METHOD_NAME"
    (core.telegram.org/bots/api#making-requests); other libraries take the server's address alone
    (martynovskyi/telegram-bot-api-reactive's ``apiHost: http://gateway.me/``). ``telegram.base_url`` written so for a
    local Bot API server asked ``/<token>/getMe`` (or ``…8081<token>``): the bot did not start, and said the token
    was refused when it was right."""
    config = bot_config(tmp_path, tg, llm, base_url=written.format(url=tg.url))
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 20)
    assert final["text"].startswith(REPLY)
    _clean(caplog, tg.token)
