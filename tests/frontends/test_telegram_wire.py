"""What the real Bot API sends besides text messages and what it refuses with (helper-34's hunt, from the Bot
API's own documentation and python-telegram-bot's error types): updates of other kinds, a blocked bot, a group
that became a supergroup mid-answer. Each ends in a clear reply or nothing, its routing row, and no traceback."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from modelyard.frontends.telegram import HELP
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.fakes.telegram import MIGRATE
from tests.frontends.conftest import (
    ALICE,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    replies_to,
    running_bot,
    with_buttons,
)
from tests.frontends.test_telegram import ask

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
SUPERGROUP = -1_001_234_567_890


def _message(tg: TelegramServer, **fields: object) -> dict:
    return {"message_id": 9_000 + len(tg.pending_updates), "from": ALICE_USER, "date": int(time.time()),
            "chat": {"id": ALICE, "first_name": "Alice", "type": "private"}, **fields}


async def test_updates_of_other_kinds_get_a_clear_reply_or_nothing(tmp_path, tg, llm, caplog):
    """An edited message, a channel post, photos, a sticker, a voice note, a button press with no message: none
    runs a model or fails; the media get one clear line each (what the bot cannot take, what to send instead); the
    next text is answered as usual. (The bot asks getUpdates for message and callback_query only — allowed_updates —
    so the real API sends no edited_message nor channel_post: here they come all the same and change nothing.)"""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_update({"edited_message": {**_message(tg, text="hello (edited)"), "edit_date": int(time.time())}})
        tg.push_update({"channel_post": {"message_id": 5, "date": int(time.time()), "text": "news",
                                         "chat": {"id": -1_001_000_000_001, "title": "News", "type": "channel"}}})
        tg.push_update({"message": _message(tg, photo=[{"file_id": "AgAD", "file_unique_id": "u1", "width": 90,
                                                        "height": 90}])})
        tg.push_update({"message": _message(tg, sticker={"file_id": "CAAD", "file_unique_id": "u2", "type": "regular",
                                                         "width": 512, "height": 512, "is_animated": False,
                                                         "is_video": False})})
        tg.push_update({"message": _message(tg, voice={"file_id": "AwAD", "file_unique_id": "u3", "duration": 2})})
        tg.push_update({"callback_query": {"id": "77", "from": ALICE_USER, "chat_instance": "1",
                                           "inline_message_id": "AAA", "data": "rate:1"}})
        await eventually(lambda: len([c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE]) >= 3)
        final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY)
    sent = [c.text for c in tg.calls_to("sendMessage") if c.chat_id == ALICE]
    assert sent[:3] == ["I can't see a photo — please send your request as text (a caption on it works too).",
                        "I can't see a sticker — please send your request as text (a caption on it works too).",
                        "I can't listen to a voice message — please type your request."]
    with db(config) as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_group_upgraded_to_a_supergroup_mid_answer_gets_the_answer_there(tmp_path, llm, caplog):
    """Bot API 400 "group chat was upgraded to a supergroup chat" with parameters.migrate_to_chat_id: the
    answer used to be retried into the old chat three times and lost, while the log said it was answered."""
    with TelegramServer(fault_methods=["sendMessage"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        upgraded = dataclasses.replace(
            Fault.status(400, message="Bad Request: group chat was upgraded to a supergroup chat"),
            variant=f"{MIGRATE}{SUPERGROUP}")
        async with running_bot(config, tg):
            tg.push(upgraded)  # the placeholder's sendMessage to the old group
            tg.push_message(ALICE, chat_id=-42, text="@modelyard_test_bot hello there")
            final = await eventually(lambda: next((c for c in tg.sent if c.chat_id == SUPERGROUP
                                                   and c.params.get("reply_markup")), None))
        assert final.text.startswith(REPLY)
        assert not [c for c in tg.sent if c.chat_id == -42]
        with db(config) as conn:
            link = conn.execute("SELECT chat_id, message_id FROM message_requests").fetchone()
        assert (int(link["chat_id"]), int(link["message_id"])) == (SUPERGROUP, final.result["message_id"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_bot_blocked_by_the_person_stops_trying_at_once(tmp_path, llm, caplog):
    """403 "Forbidden: bot was blocked by the user" from the start: nothing is retried (each try would get the same
    403 — the final message was tried three times with pauses), and the model is stopped at the first refusal rather
    than writing a whole answer no one can read (test_telegram_longrun has the block coming mid-answer)."""
    caplog.set_level(logging.INFO)
    with TelegramServer(fault_methods=["sendMessage", "editMessageText"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.faults.set_default(Fault.status(403))
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="hello there")
            await eventually(lambda: "refuses the bot" in caplog.text, timeout=10)

            def handled() -> bool:
                with db(config) as conn:
                    return conn.execute("SELECT state FROM telegram_inbox").fetchone()[0] == "done"

            await eventually(handled)
        assert not [c for c in tg.calls_to("sendMessage") if c.params.get("reply_markup")]
        assert len(tg.calls_to("sendMessage")) == 1  # the placeholder, refused: nothing more is sent
        assert not llm.requests  # nor the model asked (it was, until the first text met the same refusal)
    with db(config) as conn:
        assert [r["outcome"] for r in conn.execute("SELECT outcome FROM requests")] == ["cancelled"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_flap_at_start_is_waited_out(tmp_path, llm, caplog):
    """getMe answered by the Bot API front's 502, then deleteWebhook (start_polling's first call) by flood control:
    the bot used to stop there ('cannot reach Telegram', exit 1 from `modelyard telegram`); it starts and answers."""
    with TelegramServer(fault_methods=["getMe", "deleteWebhook"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        for fault in (Fault.status(502, html=True), Fault.parse("ok"), Fault.status(429, retry_after=1)):
            tg.push(fault)  # getMe, getMe again, deleteWebhook
        async with running_bot(config, tg):
            final = await ask(tg, "hello there")
        assert final["text"].startswith(REPLY)
        assert [c.ok for c in tg.calls_to("getMe")][:2] == [False, True]
        assert [c.ok for c in tg.calls_to("deleteWebhook")][:2] == [False, True]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_webhook_set_while_the_bot_polls_is_named_as_such(tmp_path, llm, caplog):
    """Another deployment sets a webhook for the same token: getUpdates is 409 'can't use getUpdates method while
    webhook is active'. The bot said 'another process is polling with this bot token', which sends the person
    looking for a second poller that does not exist. It names the webhook, and answers again once it is gone."""
    with TelegramServer() as tg:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.webhook_url = "https://elsewhere.example/hook"
            await eventually(lambda: "409" in caplog.text, timeout=10)
            tg.webhook_url = ""
            final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "a webhook is set for this bot token" in warnings[0], warnings
    assert "deleteWebhook" in warnings[0] and not [r for r in caplog.records if r.exc_info]


async def test_a_webhook_the_bot_deletes_at_start_is_said_without_its_path(tmp_path, llm, caplog):
    """Another deployment takes the token's updates by webhook. Polling starts with deleteWebhook (python-telegram-
    bot's start_polling): the bot took every update from it from then on, and said nothing. It says so now, naming
    the webhook's host only — its path held the token here, as bots' webhook paths often do."""
    with TelegramServer() as tg:
        tg.webhook_url = f"https://hooks.example.org/bot/{tg.token}"
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            final = await ask(tg, "hello there")
    assert final["text"].startswith(REPLY)
    said = [r.getMessage() for r in caplog.records if "webhook was set" in r.getMessage()]
    assert len(said) == 1 and "hooks.example.org" in said[0], said
    assert tg.token not in caplog.text and "/bot/" not in said[0]


async def test_a_refused_notice_does_not_stop_the_answer(tmp_path, llm, caplog):
    """The chat's chosen agent left the config: a notice goes before the answer. The Bot API refusing it (flood
    control here) failed the turn before the model ran — no answer, no row, a traceback — as the placeholder did."""
    from tests.helpers import make_config

    with TelegramServer(fault_methods=["sendMessage"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="/agent engineer")
            await eventually(lambda: any("Now talking to engineer" in (c.text or "") for c in tg.sent))
        smaller = make_config({name: m.model_dump() for name, m in config.models.items()},
                              {"chat": {"primary": "local", "max_tokens": 256}}, default_agent="chat",
                              log={"path": str(config.log.path)}, telegram=config.telegram.model_dump())
        tg.push(Fault.status(429, retry_after=1))  # the notice's sendMessage
        async with running_bot(smaller, tg):
            final = await ask(tg, "hello there")
        assert final["text"].startswith(REPLY)
    with db(config) as conn:
        assert [r["outcome"] for r in conn.execute("SELECT outcome FROM requests")] == ["ok"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_answer_in_a_forum_topic_stays_in_that_topic(tmp_path, tg):
    """A forum supergroup: every message of the answer must carry the topic's ``message_thread_id`` (Bot API), or it
    lands in the General topic. The placeholder did (a reply), but the parts past 4,096 characters — and the whole
    answer when the placeholder was refused — went out without it: half an answer in another topic."""
    forum = {"id": SUPERGROUP, "title": "Team", "type": "supergroup", "is_forum": True}
    long_text = " ".join(f"word{i}" for i in range(1400))  # three messages
    with OpenAIServer(reply_text=long_text) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            asked = _message(tg, text="@modelyard_test_bot write a lot")
            tg.push_update({"message": {**asked, "chat": forum, "message_thread_id": 42, "is_topic_message": True}})
            await eventually(lambda: [c for c in tg.sent if c.chat_id == SUPERGROUP and c.params.get("reply_markup")],
                             timeout=15)
    ids = sorted({c.result["message_id"] for c in tg.sent if c.chat_id == SUPERGROUP and isinstance(c.result, dict)})
    messages = [tg.message(SUPERGROUP, i) for i in ids]
    assert len(messages) >= 3
    assert [m.get("message_thread_id") for m in messages] == [42] * len(messages)
    assert " ".join(m["text"] for m in messages).split()[:1400] == long_text.split()


async def test_a_command_for_another_bot_in_a_group_is_left_to_it(tmp_path, tg, llm):
    """A group where the bot reads everything (privacy mode off, or an admin) also carries other bots' commands
    (``/start@other_bot``): they got 'Unknown command' and the whole help from this bot. Its own still work."""
    group = -4_000_000_001
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, group, "/start@other_bot")
        tg.push_message(ALICE, group, "/frobnicate@Other_Bot now")
        tg.push_message(ALICE, group, "/frobnicate@modelyard_test_bot")
        await eventually(lambda: [r for r in replies_to(tg, group) if r.startswith("Unknown command")])
        tg.push_message(ALICE, group, "/help@Modelyard_Test_Bot")
        await eventually(lambda: [r for r in replies_to(tg, group) if r.startswith("Send me a task")])
    assert [r.split("\n")[0] for r in replies_to(tg, group)] == ["Unknown command.", HELP.split("\n")[0]]


async def test_a_message_deleted_before_its_answer_still_gets_it(tmp_path, tg, llm, caplog):
    """Groups often run a clean-up bot that deletes commands at once, and people delete what they sent. A reply to
    a message that is gone is refused (400 "message to be replied not found"): in a group every reply quotes, so
    /status, /help and a refusal were lost (a warning in the log, nothing in the chat)."""
    group = -4_000_000_002
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, group, "/status", deleted=True)
        await eventually(lambda: [r for r in replies_to(tg, group) if r.startswith("Agent:")])
        # past what the agent takes: refused
        tg.push_message(ALICE, group, "@modelyard_test_bot " + "word " * 10_000, deleted=True)
        await eventually(lambda: [r for r in replies_to(tg, group) if "too long" in r])
        tg.push_message(ALICE, group, "@modelyard_test_bot hello there", deleted=True)
        final = await eventually(final_message(tg, group))
    assert final["text"].startswith(REPLY)
    assert [c.error for c in tg.calls if not c.ok and c.method == "sendMessage"] == []


async def test_in_a_group_the_bot_answers_only_what_is_addressed_to_it(tmp_path, tg, llm):
    """A group where the bot reads every message (privacy mode off, or an admin): each line of chatter from an allowed
    person ran a model and got an answer, each photo 'I can't see a photo'. Now, as with privacy mode on
    (and OpenClaw's requireMention): a mention of the bot (taken out of the text), a reply to it, or a command."""
    group = -4_000_000_003
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, group, "lunch at noon?")
        tg.push_update({"message": {**_message(tg, photo=[{"file_id": "AgAD", "file_unique_id": "u1", "width": 90,
                                                           "height": 90}]),
                                    "chat": {"id": group, "title": "Team", "type": "group"}}})
        tg.push_message(ALICE, group, "@Modelyard_Test_Bot hello there")
        first = await eventually(final_message(tg, group))
        assert llm.requests[-1].json["messages"][-1]["content"].startswith("hello there")
        answer = first["message_id"]
        tg.push_update({"message": {**_message(tg, text="and once more"), "reply_to_message": first,
                                    "chat": {"id": group, "title": "Team", "type": "group"}}})
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == group and c.params.get("reply_markup")]) > 1)
    assert len(llm.requests) == 2 and answer
    assert not [r for r in replies_to(tg, group) if "I can't see" in r]


async def test_strangers_chatting_in_a_group_fill_no_log(tmp_path, tg, llm, caplog):
    """In a group where the bot reads everything, each message of each person not on the allowlist was a WARNING
    'ignored message from user N' — a busy group buried the log. Only what is addressed to the bot is reported."""
    group = -4_000_000_004
    stranger = 31_337
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        for i in range(5):
            tg.push_message(stranger, group, f"chatter {i}")
        tg.push_message(stranger, group, "@modelyard_test_bot answer me")
        await eventually(lambda: "ignored message from user 31337" in caplog.text)
        tg.push_message(ALICE, group, "@modelyard_test_bot hello there")
        await eventually(final_message(tg, group))
    ignored = [r for r in caplog.records if "ignored message" in r.getMessage()]
    assert len(ignored) == 1 and len(llm.requests) == 1


@pytest.mark.parametrize("said", ["Bad Request: chat not found", "Bad Request: TOPIC_CLOSED",
                                  "Bad Request: not enough rights to send text messages to the chat",
                                  # aiogram 2's GroupDeactivated (aiogram/aiogram#598) and InvalidPeerID
                                  "Bad Request: group chat was deactivated", "Bad Request: PEER_ID_INVALID"])
async def test_a_chat_the_bot_can_no_longer_write_to_ends_the_tries_at_once(tmp_path, llm, caplog, said):
    """The bot removed from the group, a forum topic closed, posting restricted: 400s that no retry gets through, as
    a 403 does. The final message was tried three times with pauses, a WARNING each; now the first refusal of the
    answer's text stops it (and its model), one INFO line, nothing retried — the placeholder's now, before the model
    is asked."""
    caplog.set_level(logging.INFO)
    with TelegramServer(fault_methods=["sendMessage", "editMessageText"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.faults.set_default(Fault.status(400, message=said))
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="hello there")
            await eventually(lambda: "refuses the bot" in caplog.text, timeout=10)
        assert not [c for c in tg.calls_to("sendMessage") if c.params.get("reply_markup")]
        assert len(tg.calls_to("sendMessage")) == 1  # the placeholder, refused: nothing more is sent
        assert not llm.requests  # nor the model asked (it was, until the first text met the same refusal)
    with db(config) as conn:
        assert [r["outcome"] for r in conn.execute("SELECT outcome FROM requests")] == ["cancelled"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def _inbox(config) -> list[str]:
    with db(config) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM telegram_inbox ORDER BY update_id")]


async def test_a_burst_then_a_blocked_bot_asks_no_model_for_any_of_it(tmp_path, llm, caplog):
    """Three messages sent at once, and the bot blocked before it answers (403 "Forbidden: bot was blocked by the
    user" for every call from then on: core.telegram.org/bots/faq, python-telegram-bot's Forbidden). Each message
    waited its turn, asked its model and met the same 403: three model runs and six refused sends for no reader. The
    first refusal — the placeholder's — now ends the answer before its model is asked, and the messages waiting
    behind it in that chat: one send, no model, each inbox row done, said once in the log."""
    caplog.set_level(logging.INFO)
    with TelegramServer(fault_methods=["sendMessage", "editMessageText"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.faults.set_default(Fault.status(403))
        for i in range(3):  # before the bot starts: its first poll takes the three at once
            tg.push_message(ALICE, text=f"question {i}")
        async with running_bot(config, tg):
            await eventually(lambda: _inbox(config) == ["done"] * 3, 10)
        assert not llm.requests, f"{len(llm.requests)} model run(s) for a chat that refuses the bot"
        assert len(tg.calls_to("sendMessage")) == 1, [c.text for c in tg.calls_to("sendMessage")]
    assert "chat 111 refuses the bot; the 2 message(s) waiting there are not answered" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_final_answer_the_chat_refuses_is_not_logged_as_answered(tmp_path, tg, llm, caplog):
    """The person blocked the bot between its last streamed edit and the final one: the final edit's 403 ended the
    tries, and the log went on 'chat 111 answered by chat/local (request …, 1 message(s))' — an answer no one saw
    logged as delivered. It says now that the answer could not be delivered, and why."""
    caplog.set_level(logging.INFO)
    config = bot_config(tmp_path, tg, llm)
    tg.refuse(Fault.status(403), method="editMessageText", when=with_buttons)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        await eventually(lambda: _inbox(config) == ["done"], 20)
    assert "answered by" not in caplog.text
    assert "chat 111 refuses the bot: the answer (request " in caplog.text and "could not be delivered" in caplog.text
    assert [c.error for c in tg.calls_to("editMessageText") if with_buttons(c.params)] == [
        "Forbidden: bot was blocked by the user"]  # tried once
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_private_chat_topic_the_api_will_not_send_to_is_answered_in_the_chat(tmp_path, tg, llm, caplog):
    """Bot API 9.3 gave private chats topics: a person's message there comes with ``message_thread_id`` and
    ``is_topic_message`` (core.telegram.org/bots/api-changelog#december-31-2025), and python-telegram-bot's reply
    carries the topic back. After the Bot API's 10.0 rollout every such send was refused, 400 "message thread not
    found", while the person's messages still came from the topic; without ``message_thread_id`` the send went
    through, into the chat itself (tdlib/telegram-bot-api#847). The bot took the refusal for a closed forum topic:
    the answer ended at its '…', before the model was asked — nothing asked in a topic was answered, nor /help. Now
    the answer and the help come in the chat itself, said once in the log."""
    caplog.set_level(logging.INFO)
    config = bot_config(tmp_path, tg, llm)
    tg.refuse_private_topics = True
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello from my topic", topic_id=77)
        final = await eventually(final_message(tg, ALICE), 20)
        tg.push_message(ALICE, text="/help", topic_id=77)
        await eventually(lambda: any(r.startswith(HELP[:40]) for r in replies_to(tg, ALICE)), 10)
    assert final["text"].startswith(REPLY)
    assert len(llm.requests) == 1
    assert caplog.text.count("Telegram refuses its topics") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_strangers_command_for_another_bot_is_not_reported_and_one_for_this_bot_is(tmp_path, tg, llm, caplog):
    """Per the Bot API, ``/command@botname`` in a group is meant for that bot only (core.telegram.org/bots/features
    #commands: "/start@YourBot"). A stranger's ``/start@other_bot`` typed as text was a WARNING 'ignored message
    from user N' here each time — the log of a group with another bot filled with them — while the same command as a
    photo's caption was silent. Now a command counts as addressed to this bot only when it is for no bot or for this
    one, in a text as in a caption: ``/help@modelyard_test_bot`` under a photo is still reported."""
    group = -4_000_000_017
    stranger = 31_338
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(stranger, group, "/start@other_bot")
        tg.push_photo(stranger, group, caption="/summary@other_bot")
        tg.push_photo(stranger, group, caption="/help@modelyard_test_bot")
        await eventually(lambda: "ignored message from user 31338" in caplog.text, 10)
        tg.push_message(ALICE, group, "@modelyard_test_bot hello there")
        await eventually(final_message(tg, group), 20)
    ignored = [r for r in caplog.records if "ignored message" in r.getMessage()]
    assert len(ignored) == 1, [r.getMessage() for r in ignored]
    assert replies_to(tg, group) and len(llm.requests) == 1


async def test_each_topic_of_a_private_chat_is_a_conversation_of_its_own(tmp_path, tg, llm):
    """Bot API 9.3 lets a person keep several threads with a bot as topics of their private chat ("letting users
    organize bot chats into easily accessible threads"; each message carries its topic's ``message_thread_id``). The
    bot kept one history per chat: a question in one topic was answered with another topic's talk in context
    (openclaw/openclaw#7739; kirodotdev/KiroCrew#4927: "switching topic does not switch conversation"). Now each topic
    has its own history (and /reset clears only its own); the chat outside topics keeps the chat's."""
    config = bot_config(tmp_path, tg, llm)

    def asked(n: int) -> str:
        return str(llm.requests[n].json["messages"])

    def finals() -> int:
        return len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")])

    async with running_bot(config, tg):
        answered = 0
        for text, topic in [("plan the trip to Oslo", 5), ("fix my regex", 6), ("and the hotel?", 5), ("/reset", 6),
                            ("and in Python?", 6)]:
            tg.push_message(ALICE, text=text, topic_id=topic)
            if text == "/reset":
                await eventually(lambda: "History cleared. Starting fresh." in replies_to(tg, ALICE), 10)
                continue
            answered += 1
            await eventually(lambda answered=answered: finals() == answered, 20)
    assert len(llm.requests) == 4
    assert "Oslo" not in asked(1)
    assert "Oslo" in asked(2) and "regex" not in asked(2)
    assert "regex" not in asked(3) and "Oslo" not in asked(3)


async def test_chatter_in_a_forum_topic_the_bot_opened_is_not_taken_for_replies_to_it(tmp_path, tg, llm):
    """A forum topic is the thread of its opening service message (core.telegram.org/api/forum), and every message in
    it comes with ``reply_to_message`` set to that message (aiogram#1511) — ``from`` the bot where the bot opened the
    topic (banteg/takopi#152's log: ``"reply_to_message": {"message_id": 163, "from": {… "is_bot": true},
    "forum_topic_created": {"name": …, "icon_color": 7322096}}``). Each such message was taken as a reply to the bot:
    every line of chatter in the topic ran a model and got an answer (NousResearch/hermes-agent#51349). Now only what
    mentions the bot, or truly replies to it, is answered."""
    forum = {"id": SUPERGROUP, "title": "Team", "type": "supergroup", "is_forum": True}
    opening = {"message_id": 163, "from": tg.bot_user, "chat": forum, "date": int(time.time()) - 600,
               "message_thread_id": 163, "is_topic_message": True,
               "forum_topic_created": {"name": "party-testing7 @main", "icon_color": 7322096}}
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        for text in ("lunch anyone?", "@modelyard_test_bot hello there"):
            tg.push_update({"message": {**_message(tg, text=text), "chat": forum, "message_thread_id": 163,
                                        "is_topic_message": True, "reply_to_message": opening}})
        await eventually(lambda: [c for c in tg.sent if c.chat_id == SUPERGROUP and c.params.get("reply_markup")],
                         timeout=15)
        await eventually(lambda: not tg.pending_updates, 10)
    assert [r.json["messages"][-1]["content"] for r in llm.requests] == ["hello there"]
