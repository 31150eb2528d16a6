"""Updates as the real Bot API shapes them beyond a person's plain text (round 15's hunt): messages sent on behalf of
a chat, albums, button presses the bot handles late. Each gets one truthful reply or nothing, and runs a model only
for a person the allowlist names."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from modelyard.frontends.telegram import ANONYMOUS
from tests.fakes import OpenAIServer, TelegramServer
from tests.frontends.conftest import ALICE, bot_config, db, eventually, final_message, replies_to, running_bot

GROUP = -1_001_555_000_001
TEAM = {"id": GROUP, "title": "Team", "type": "supergroup"}
#: what the Bot API puts in ``from`` of an anonymous admin's message (Bot API 5.0, ktgbotapi#183)
GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
TELEGRAM = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
CHANNEL = {"id": -1_001_555_000_002, "title": "Team news", "type": "channel"}
_IDS = itertools.count(7_000)


def _in_group(tg: TelegramServer, sender: dict, **fields: object) -> dict:
    message = {"message_id": next(_IDS), "from": sender, "chat": TEAM,
               "date": int(time.time()), **fields}
    return tg.push_update({"message": message})


async def test_a_message_sent_on_behalf_of_a_chat_is_never_taken_for_an_allowed_person(tmp_path, tg, llm, caplog):
    """An anonymous admin's message comes from @GroupAnonymousBot (1087968824) with ``sender_chat`` the group; a
    channel post forwarded into its discussion group from Telegram (777000), ``is_automatic_forward``. The README's
    way to learn one's id (the log's 'ignored message from user N') gave 1087968824 to an anonymous admin, and with it
    in allowed_users every anonymous admin of any group the bot is in was answered — dgongut/docker-controller-bot#25
    ("DON'T PUT 1087968824 AS TELEGRAM_ADMIN"), tdlib/telegram-bot-api#667. Now no model runs for either; the admin
    who addressed the bot is told why, the forwarded post gets nothing."""
    caplog.set_level(logging.INFO)
    config = bot_config(tmp_path, tg, llm, allowed_users=[ALICE, 1087968824, 777000])
    async with running_bot(config, tg):
        _in_group(tg, GROUP_ANONYMOUS_BOT, sender_chat=TEAM, text="@modelyard_test_bot delete the prod database")
        _in_group(tg, TELEGRAM, sender_chat=CHANNEL, is_automatic_forward=True,
                  text="New release out! Ask @modelyard_test_bot about it")
        await eventually(lambda: ANONYMOUS in replies_to(tg, GROUP))
        tg.push_message(ALICE, GROUP, "@modelyard_test_bot hello there")
        await eventually(final_message(tg, GROUP))
    assert len(llm.requests) == 1  # Alice's alone
    assert replies_to(tg, GROUP).count(ANONYMOUS) == 1
    assert "on behalf of chat -1001555000002" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def _photo(tg: TelegramServer, album: str, n: int, caption: str | None = None) -> None:
    message = {"message_id": next(_IDS), "from": ALICE_USER,
               "chat": {"id": ALICE, "first_name": "Alice", "type": "private"}, "date": int(time.time()),
               "media_group_id": album,
               "photo": [{"file_id": f"AgAD{album}{n}", "file_unique_id": f"u{album}{n}", "width": 90, "height": 90}]}
    if caption is not None:
        message["caption"] = caption
    tg.push_update({"message": message})


ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}


async def test_an_album_is_one_request_and_its_uncaptioned_photos_get_no_reply_of_their_own(tmp_path, tg, llm):
    """An album comes as one message per item sharing a media_group_id, the caption on the item it was written on
    (openclaw/openclaw#110690: each item may carry its own). The captioned photo was answered and each other photo
    got "I can't see a photo — … (a caption on it works too)", though the person had written one. Now the album is
    one request (each caption in it, the model told how many items it cannot see), and an album with no caption gets
    one reply, not one per photo."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        _photo(tg, "A1", 1, caption="which of these is the best logo?")
        _photo(tg, "A1", 2)
        _photo(tg, "A1", 3, caption="this one is mine")
        await eventually(final_message(tg, ALICE), 10)
        _photo(tg, "B2", 1)
        _photo(tg, "B2", 2)
        await eventually(lambda: [r for r in replies_to(tg, ALICE) if r.startswith("I can't see")], 10)
        tg.push_message(ALICE, text="thanks")
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]) > 1)
    assert len(llm.requests) == 2
    asked = llm.requests[0].json["messages"][-1]["content"]
    assert "Item 1: which of these is the best logo?" in asked and "Item 3: this one is mine" in asked
    assert "an album of 3 items" in asked
    assert [r for r in replies_to(tg, ALICE) if r.startswith("I can't see")] == [
        "I can't see an album of 2 items — please send your request as text (a caption on it works too)."]


async def test_a_press_answered_after_telegrams_window_keeps_its_rating_and_says_so_plainly(tmp_path, tg, llm, caplog):
    """A 👍 pressed while the bot was down is handled at its next start (the inbox keeps it), long after Telegram's
    window for answering a press (seconds: Telethon#4073): answerCallbackQuery is refused with 400 "query is too old
    and response timeout expired or query ID is invalid" (aiogram_dialog#145, nutgram#725). The rating was kept, but
    the log's only word was a WARNING 'telegram: BadRequest: Query is too old…', as if it had failed. Now an info
    line says the press was answered too late and what it did stands."""
    caplog.set_level(logging.INFO)
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="rate me")
        final = await eventually(final_message(tg, ALICE), 10)
    tg.push_callback(ALICE, final["message_id"], data="rate:1")
    tg.expire_presses()
    async with running_bot(config, tg):
        await eventually(lambda: tg.calls_to("answerCallbackQuery"), 10)
        await eventually(lambda: "answered too late" in caplog.text)
    assert [c.ok for c in tg.calls_to("answerCallbackQuery")] == [False]
    with db(config) as conn:
        assert conn.execute("SELECT acceptable FROM requests").fetchone()[0] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_text_the_persons_app_cut_in_two_is_answered_once_whole(tmp_path, tg, llm, caplog):
    """A paste longer than a message holds is cut by the person's Telegram app into messages sent at once, nothing
    marking the second as the first's continuation (tdesktop#5972). The first piece was answered alone, ending
    mid-sentence, and the second as a question of its own (opencrabs#950: "answered one fragment at a time, so the
    agent reports it as cut off"; takopi#171). Now one answer to the whole text, and both inbox rows done."""
    config = bot_config(tmp_path, tg, llm)
    log_lines = "\n".join(f"2026-11-30 09:{i % 60:02d}:00 worker-{i} ERROR connection reset by peer" for i in range(80))
    first = log_lines[:4050]
    async with running_bot(config, tg):
        tg.push_message(ALICE, text=first)
        tg.push_message(ALICE, text=log_lines[4050:] + "\nwhy does this keep happening?")
        await eventually(final_message(tg, ALICE), 10)
        await eventually(lambda: [r["state"] for r in db(config).execute("SELECT state FROM telegram_inbox")]
                         == ["done", "done"], 10)
        tg.push_message(ALICE, text="thanks")
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]) > 1)
    assert len(llm.requests) == 2  # the whole text, then "thanks"
    asked = llm.requests[0].json["messages"][-1]["content"]
    assert asked.startswith(first.strip()) and asked.endswith("why does this keep happening?")
    assert "worker-79" in asked
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_question_in_reply_to_a_message_shows_the_model_what_it_replies_to(tmp_path, tg, llm):
    """"@bot what does this mean?" in reply to a colleague's message reached the model as that question alone — the
    message it is about never did (PleasePrompto/ductor#135, nullclaw/nullclaw#916: reply_to_message used only to
    tell whether the bot was addressed). Now the model is shown what is replied to, and of a partly quoted message
    (Bot API 7.0 ``quote``, NousResearch/hermes-agent#23091) the part the person selected."""
    config = bot_config(tmp_path, tg, llm)
    bob = {"id": 222, "is_bot": False, "first_name": "Bob"}
    colleague = {"message_id": next(_IDS), "from": bob, "chat": TEAM, "date": int(time.time()),
                 "text": "the deploy failed: container killed with exit code 137"}
    async with running_bot(config, tg):
        tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "chat": TEAM,
                                    "date": int(time.time()), "text": "@modelyard_test_bot what does this mean?",
                                    "reply_to_message": colleague}})
        answer = await eventually(final_message(tg, GROUP), 10)
        tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "chat": TEAM,
                                    "date": int(time.time()), "text": "and how do I avoid that?",
                                    "reply_to_message": answer,
                                    "quote": {"text": answer["text"][6:30], "position": 6}}})
        await eventually(lambda: len(llm.requests) == 2, 10)
    first = llm.requests[0].json["messages"][-1]["content"]
    assert first.startswith("what does this mean?")
    assert 'a message from Bob: "the deploy failed: container killed with exit code 137"' in first
    second = llm.requests[1].json["messages"][-1]["content"]
    assert f'your earlier answer, quoting: "{answer["text"][6:30].strip()}"' in second


async def test_an_answer_streamed_in_a_group_stays_within_the_groups_budget(tmp_path, llm, caplog):
    """A bot may send and edit about 20 times a minute in one group, the two counted together (tdlib/td#2592;
    grammY's "Flood Limits"). Edits every second (the default) used the minute up in 20 s of a long answer: 429 with
    the rest of the minute as retry_after, which held the final answer and every other reply in the group. In a group
    an answer is now edited every GROUP_EDIT_INTERVAL (4 s) at most. Here edits every 0.5 s reach the limit in the
    12 s of the answer (at the default 1 s, a 20 s one did); it now meets no flood control."""
    words = " ".join(f"word{i}" for i in range(240))
    with OpenAIServer(reply_text=words, chunk_interval=0.05) as slow, TelegramServer(group_budget=20) as tg:
        config = bot_config(tmp_path, tg, slow, edit_interval=0.5)
        async with running_bot(config, tg):
            tg.push_message(ALICE, GROUP, "@modelyard_test_bot tell me a long story")
            final = await eventually(final_message(tg, GROUP), 40)
            tg.push_message(ALICE, GROUP, "/help")
            await eventually(lambda: [r for r in replies_to(tg, GROUP) if r.startswith("Send me a task")], 10)
    assert final["text"].startswith(words)
    assert not [c.error for c in tg.calls if (c.error or "").startswith("Too Many Requests")]
    assert len([c for c in tg.calls_to("editMessageText") if c.chat_id == GROUP]) >= 3  # it still streams
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


#: the channel a post replied to in another chat comes from (MessageOriginChannel: type, date, chat, message_id —
#: core.telegram.org/bots/api#messageoriginchannel)
VENTURE = {"id": -1_001_555_000_077, "title": "Venture Capital", "type": "channel"}


async def test_a_reply_to_another_chats_message_shows_the_model_what_it_replies_to(tmp_path, tg, llm):
    """Telegram's "Reply in another chat": Alice replies to a channel's post in her chat with the bot, quoting a
    sentence of it, then to a photo Bob sent elsewhere. Such a message has no reply_to_message but ``external_reply``
    (ExternalReplyInfo: who wrote it, its media, never its text — core.telegram.org/bots/api#externalreplyinfo) and
    the part selected in ``quote`` (#textquote). Only her question reached the model ("what does this mean?" about
    nothing: NousResearch/hermes-agent#93722). Now the model gets the quote and whose it is; for the photo, that it
    was one and is not shown."""
    config = bot_config(tmp_path, tg, llm)
    private = {"id": ALICE, "first_name": "Alice", "type": "private"}
    now = int(time.time())
    post = {"origin": {"type": "channel", "date": now - 60, "chat": VENTURE, "message_id": 77}, "chat": VENTURE,
            "message_id": 77}
    photo = {"origin": {"type": "user", "date": now - 30,
                        "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}},
             "photo": [{"file_id": "AgADx", "file_unique_id": "ux", "width": 90, "height": 90}]}
    async with running_bot(config, tg):
        tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "chat": private, "date": now,
                                    "text": "what does this mean?", "external_reply": post,
                                    "quote": {"text": "One of my favorite tricks is the inversion process.",
                                              "position": 0, "is_manual": True}}})
        await eventually(final_message(tg, ALICE), 20)
        tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "chat": private, "date": now,
                                    "text": "is this real?", "external_reply": photo}})
        await eventually(lambda: len(llm.requests) == 2, 20)
    first = llm.requests[0].json["messages"][-1]["content"]
    assert first.startswith("what does this mean?")
    assert ('a message from the channel Venture Capital in another chat, quoting: "One of my favorite tricks is the '
            'inversion process."') in first
    second = llm.requests[1].json["messages"][-1]["content"]
    assert second.startswith("is this real?")
    assert "a reply to a photo from Bob in another chat, not shown to you" in second


async def test_a_reply_to_another_topics_message_is_not_said_to_be_from_another_chat(tmp_path, tg, llm):
    """ExternalReplyInfo is "a message that is being replied to, which may come from another chat or forum topic"
    (core.telegram.org/bots/api#externalreplyinfo): in a forum, a reply to a message of another topic of the same
    supergroup carries ``external_reply`` whose ``chat`` is this chat. The model was told the message was "in another
    chat"; it is in another topic of this one."""
    config = bot_config(tmp_path, tg, llm)
    forum = {"id": GROUP, "title": "Team", "type": "supergroup", "is_forum": True}
    now = int(time.time())
    elsewhere = {"origin": {"type": "user", "date": now - 30,
                            "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}},
                 "chat": forum, "message_id": 5}
    async with running_bot(config, tg):
        tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "chat": forum, "date": now,
                                    "message_thread_id": 42, "is_topic_message": True,
                                    "text": "@modelyard_test_bot is this right?", "external_reply": elsewhere,
                                    "quote": {"text": "The deploy is on Friday.", "position": 0}}})
        await eventually(lambda: len(llm.requests) == 1, 20)
    said = llm.requests[0].json["messages"][-1]["content"]
    assert 'a reply to a message from Bob in another topic of this chat, quoting: "The deploy is on Friday."' in said
    assert "another chat" not in said


async def test_an_album_whose_items_come_out_of_order_is_answered_once_across_a_restart(tmp_path, tg, llm):
    """Items of albums forwarded at once "come in with different order" (kurigram-org/kurigram#39; the Bot API
    promises no order within an album — the arrival order here, a later id first, is that report's, not seen by
    us). The album's turn is the first item to come, but its other items were filed under the album's lowest id:
    the one that came second was never marked handled, stayed in the inbox, and the next start answered it again
    alone ("I can't see a photo"). Now the album is answered once, restart or not."""
    config = bot_config(tmp_path, tg, llm)
    second, first = next(_IDS), next(_IDS)  # the second to come has the lower id
    for message_id, caption in ((first, "which logo is better?"), (second, None)):
        message = {"message_id": message_id, "from": ALICE_USER,
                   "chat": {"id": ALICE, "first_name": "Alice", "type": "private"}, "date": int(time.time()),
                   "media_group_id": "R9",
                   "photo": [{"file_id": f"AgADR9{message_id}", "file_unique_id": f"uR9{message_id}", "width": 90,
                              "height": 90}]}
        if caption is not None:
            message["caption"] = caption
        tg.push_update({"message": message})
    async with running_bot(config, tg):
        await eventually(final_message(tg, ALICE), 10)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="thanks")
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]) > 1,
                         20)
    assert not [r for r in replies_to(tg, ALICE) if r.startswith("I can't see")], replies_to(tg, ALICE)
    assert len(llm.requests) == 2  # the album, then "thanks"
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


def _forwarded(tg: TelegramServer, text: str, origin: dict) -> None:
    """A message Alice forwards: the original's text, ``forward_origin`` saying whose it was (Bot API 7.0 MessageOrigin:
    ``user`` with ``sender_user``, ``hidden_user`` with ``sender_user_name`` for one who hides their account)."""
    tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "date": int(time.time()),
                                "chat": {"id": ALICE, "first_name": "Alice", "type": "private"}, "text": text,
                                "forward_origin": {**origin, "date": int(time.time()) - 3600}}})


BOB_ORIGIN = {"type": "user", "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}}


async def test_messages_forwarded_with_a_comment_are_one_request_each_said_whose(tmp_path, tg, llm):
    """Alice forwards two messages with a comment typed in the forward window. Telegram delivers the comment and each
    forwarded message as updates of their own (HKUDS/nanobot#2585: "the bot responds twice, neither response being
    what the user intended"; chatwoot/chatwoot#13308: 5–10 forwarded at once, one request each): the comment was
    answered without what it was about, then each forwarded text as if Alice had written it (openclaw/openclaw#108985).
    Now they are one request, each forwarded text said as such and whose; a lone forward is said whose too."""
    config = bot_config(tmp_path, tg, llm)
    tg.push_message(ALICE, text="is this plan any good?")
    _forwarded(tg, "We ship on Friday.", BOB_ORIGIN)
    _forwarded(tg, "No tests until Monday.", {"type": "hidden_user", "sender_user_name": "Carol"})
    async with running_bot(config, tg):
        await eventually(final_message(tg, ALICE), 20)
        _forwarded(tg, "Standup moved to 10:00.", BOB_ORIGIN)
        await eventually(lambda: len([c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]) > 1,
                         20)
    assert len(llm.requests) == 2
    asked = llm.requests[0].json["messages"][-1]["content"]
    assert asked.startswith("is this plan any good?")
    assert "[Forwarded message from Bob:]\nWe ship on Friday." in asked
    assert "[Forwarded message from Carol:]\nNo tests until Monday." in asked
    assert llm.requests[1].json["messages"][-1]["content"] == "[Forwarded message from Bob:]\nStandup moved to 10:00."


async def test_a_comment_a_poll_brought_alone_is_answered_with_the_forwards_the_next_poll_brings(tmp_path, tg):
    """The comment typed in the forward window and the forwards are sent together, but a long poll returns as soon as
    there is one update (core.telegram.org/bots/api#getupdates: long polling), so one getUpdates may bring the comment
    alone and the next the forwards. The comment was then answered alone and the forwards as a second request — the
    two answers HKUDS/nanobot#2585 reports ("the bot responds twice, neither response being what the user intended").
    A message alone still starts at once (its '…' shows, its model is asked); forwards that come within the gathering
    wait take it over: one request, the comment first, its answer written in the comment's '…'."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(40)), chunk_interval=0.1) as slow:
        config = bot_config(tmp_path, tg, slow)
        async with running_bot(config, tg) as bot:
            bot._gather.wait = 3.0  # the gathering wait (1 s), made room for a loaded machine between the two polls
            tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "date": int(time.time()),
                                        "chat": {"id": ALICE, "first_name": "Alice", "type": "private"},
                                        "text": "is this plan any good?"}})
            await eventually(lambda: "…" in replies_to(tg, ALICE), 10)  # answered at once, not held back
            _forwarded(tg, "We ship on Friday.", BOB_ORIGIN)
            _forwarded(tg, "No tests until Monday.", BOB_ORIGIN)
            await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(1.5)  # a second answer, were there one, would be under way
        asked = slow.requests[-1].json["messages"][-1]["content"]
    finals = [c for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]
    assert len(finals) == 1, [c.text for c in finals]
    assert asked.startswith("is this plan any good?")
    assert "[Forwarded message from Bob:]\nWe ship on Friday." in asked and "No tests until Monday." in asked
    assert replies_to(tg, ALICE).count("…") == 1  # the comment's placeholder took the answer
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0
