"""A multi-message forward and the request typed after it, delivered as updates polls apart, answered as one request
(frontends/telegram_gather.py ``FORWARD_WAIT``, frontends/telegram.py ``_join_alone``). Each test here fails on the
code before: there a forward more than a second after the previous one, and the request typed after the forwards,
were requests of their own.

The shapes are the Bot API's: each forwarded message is an update of its own with ``forward_origin``
(core.telegram.org/bots/api#messageorigin) and ``date`` the second the forward was sent — one forward action stamps
all its messages at once; the person's request typed after them ("summarise these": banteg/takopi#89, "can you fix
this?" after forwarded logs; chatwoot/chatwoot#13308: 5–10 forwarded at once) comes later, as a plain message."""

from __future__ import annotations

import asyncio
import time

from tests.fakes import OpenAIServer, TelegramServer
from tests.frontends.conftest import ALICE, bot_config, db, eventually, final_message, replies_to, running_bot

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
PRIVATE = {"id": ALICE, "first_name": "Alice", "type": "private"}
BOB_ORIGIN = {"type": "user", "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}}


def _forward(tg: TelegramServer, text: str, sent: int) -> None:
    """A message Alice forwards, ``sent`` the second of her forward action; its id from the chat's one sequence (a
    private chat numbers both sides' messages in one row)."""
    tg.push_update({"message": {"message_id": tg._new_message_id(), "from": ALICE_USER, "date": sent,
                                "chat": PRIVATE, "text": text,
                                "forward_origin": {**BOB_ORIGIN, "date": sent - 3600}}})


def _says(tg: TelegramServer, text: str) -> None:
    tg.push_update({"message": {"message_id": tg._new_message_id(), "from": ALICE_USER, "date": int(time.time()),
                                "chat": PRIVATE, "text": text}})


def _finals(tg: TelegramServer) -> list[str]:
    return [c.text or "" for c in tg.sent if c.chat_id == ALICE and c.params.get("reply_markup")]


async def test_forwards_polls_apart_and_the_request_typed_after_them_are_one_request(tmp_path, tg, llm):
    """Alice forwards three messages; the third reaches the bot 1.8 s after the others (a later poll on a loaded
    machine), and she types "summarise these" 1.5 s after that. The first two were answered after a second's quiet,
    the third alone, then the request: three answers. Now one request, in the order sent, one answer; "typing…" shows
    while the forwards are held."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        sent = int(time.time())
        _forward(tg, "We ship on Friday.", sent)
        _forward(tg, "No tests until Monday.", sent)
        await asyncio.sleep(1.8)
        _forward(tg, "Standup moved to 10:00.", sent)
        await asyncio.sleep(1.5)
        _says(tg, "summarise these")
        await eventually(final_message(tg, ALICE), 20)
        await eventually(lambda: not tg.pending_updates, 10)
        await asyncio.sleep(1.5)  # a second answer, were there one, would be under way
    assert len(llm.requests) == 1, [r.json["messages"][-1]["content"] for r in llm.requests]
    asked = llm.requests[0].json["messages"][-1]["content"]
    assert asked.index("We ship on Friday.") < asked.index("No tests until Monday.") < asked.index(
        "Standup moved to 10:00.") < asked.index("summarise these"), asked
    assert len(_finals(tg)) == 1
    assert any(c.params.get("action") == "typing" for c in tg.calls_to("sendChatAction"))
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


async def test_a_late_forward_and_the_request_after_it_join_the_answer_being_written(tmp_path, tg):
    """The forwards' answer has begun (its '…' on screen, the model writing) when a forward of the same action — the
    same ``date`` — arrives late, and then the request typed after them. Each was a request of its own, answered below
    the first. Now each calls the answer off and joins it: one request, its answer written in the first '…'. A forward
    of another action (another second) after the answer is complete is a request of its own."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(60)), chunk_interval=0.1) as slow:
        config = bot_config(tmp_path, tg, slow)
        async with running_bot(config, tg) as bot:
            bot._gather.patience = 0.5  # the wait for the rest (3 s), shortened: the late one comes after it
            sent = int(time.time())
            _forward(tg, "We ship on Friday.", sent)
            await eventually(lambda: "…" in replies_to(tg, ALICE), 10)
            await eventually(lambda: slow.requests, 10)  # the model is writing
            _forward(tg, "No tests until Monday.", sent)
            await asyncio.sleep(0.5)
            _says(tg, "summarise these")
            await eventually(final_message(tg, ALICE), 40)
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(1.5)
            assert len(_finals(tg)) == 1, _finals(tg)
            _forward(tg, "Lunch at noon.", sent + 60)  # another forward, a minute later
            await eventually(lambda: len(_finals(tg)) == 2, 40)
        asked = [r.json["messages"][-1]["content"] for r in slow.requests]
    joined = asked[-2]
    assert joined.index("We ship on Friday.") < joined.index("No tests until Monday.") < joined.index(
        "summarise these"), asked
    assert "Lunch at noon." in asked[-1] and "We ship" not in asked[-1]
    placeholders = [c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…"]
    assert len(placeholders) == 2, replies_to(tg, ALICE)  # one per answer: the joined one wrote in the first
    assert all((tg.message(ALICE, i) or {}).get("text") != "…" for i in placeholders)
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


async def test_an_answer_taken_over_then_stopped_before_the_taker_wrote_there_says_it_stopped(tmp_path, tg):
    """Alice's request typed after her forwards takes their half-shown answer over, and she sends /stop while it waits
    for that answer to let go (an edit of it held by Telegram: python-telegram-bot#1045). /stop ended the request's turn
    before it wrote in the forwards' messages, and they stayed as they were — a part-answer, no "[stopped]" — for good.
    Now what a turn took over and left says it was stopped, as a stopped answer does."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(60)), chunk_interval=0.1) as slow:
        config = bot_config(tmp_path, tg, slow)
        async with running_bot(config, tg) as bot:
            bot._gather.patience = 0.5  # the wait for the request (3 s), shortened: it comes during the answer
            _forward(tg, "We ship on Friday.", int(time.time()))
            await eventually(lambda: any("w3" in (c.text or "") for c in tg.calls_to("editMessageText")), 15)
            tg.carry_out_late(4.0, method="editMessageText")  # the next edit held: the answer lets go 4 s later
            await asyncio.sleep(0.3)
            _says(tg, "summarise these")
            await asyncio.sleep(1.0)  # the request's turn waits for the forwards' to let go
            tg.push_message(ALICE, text="/stop", first_name="Alice")
            await eventually(lambda: any(r.startswith("Stopped") for r in replies_to(tg, ALICE)), 15)
            await asyncio.sleep(4.0)  # the held edit done
        placeholder = next(c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…")
        shown = (tg.message(ALICE, placeholder) or {}).get("text", "")
        assert shown.endswith("[stopped]") and "w3" in shown, shown
        assert len(slow.requests) == 1  # the request's turn never asked the model


async def test_in_a_group_forwards_then_a_request_to_the_bot_are_one_request_without_typing(tmp_path, tg, llm):
    """In a group Alice forwards two messages, then asks the bot about them ("@bot summarise these") 1.8 s later. The
    forwards, addressed to nobody, were passed over, and the question came alone. Now it is answered with them. The
    bot does not show "typing…" in a group while forwards wait: they may well not be for it."""
    group = {"id": -1_001_555_000_009, "title": "Team", "type": "supergroup"}
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        sent = int(time.time())
        for text in ("We ship on Friday.", "No tests until Monday."):
            tg.push_update({"message": {"message_id": tg._new_message_id(), "from": ALICE_USER, "date": sent,
                                        "chat": group, "text": text,
                                        "forward_origin": {**BOB_ORIGIN, "date": sent - 3600}}})
        await asyncio.sleep(1.8)
        tg.push_update({"message": {"message_id": tg._new_message_id(), "from": ALICE_USER, "date": int(time.time()),
                                    "chat": group, "text": "@modelyard_test_bot summarise these"}})
        await eventually(lambda: [c for c in tg.sent if c.chat_id == group.get("id") and c.params.get("reply_markup")],
                         20)
    asked = llm.requests[-1].json["messages"][-1]["content"]
    assert "We ship on Friday." in asked and "No tests until Monday." in asked and "summarise these" in asked, asked
    assert not tg.calls_to("sendChatAction")


async def test_a_person_whose_forwards_stand_alone_is_not_waited_for(tmp_path, tg, llm):
    """Alice forwards one message at a time and asks nothing after them: each is her request. Each was held for the
    request typed after forwards (FORWARD_WAIT, 3 s; here 30 s, the hold 60 s, from the third on), which never came:
    every lone forward was answered that much later. The official apps send a forward's comment first
    (tdesktop#6900: "1. comment 2. forwarded message"), so nothing marks a forward as her request; what she did
    twice does. Now her third waits the one-second quiet of any message."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg) as bot:
        bot._gather.patience = 1.5
        for i, text in enumerate(["We ship on Friday.", "No tests until Monday."], 1):
            _forward(tg, text, int(time.time()))
            await eventually(lambda i=i: len(_finals(tg)) == i, 20)
            await asyncio.sleep(1.1)  # the next forward is another action: another second
        bot._gather.patience, bot._gather.hold = 30.0, 60.0
        _forward(tg, "Standup moved to 10:00.", int(time.time()))
        await eventually(lambda: len(_finals(tg)) == 3, 15)  # not held for the 30 s
    assert "Standup moved to 10:00." in llm.requests[-1].json["messages"][-1]["content"]


async def _joined_after_standing_alone(tg: TelegramServer, bot, slow: OpenAIServer) -> None:
    """Two lone forwards answered before; a third, not held for a request, and one typed while the model writes its
    answer: it calls that answer off and joins it."""
    bot._stood_alone = {("text", ALICE, ALICE): 2}  # what two lone forwards answered left
    _forward(tg, "We ship on Friday.", int(time.time()))
    await eventually(lambda: slow.requests, 10)  # the model is writing
    _says(tg, "is that realistic?")
    await eventually(lambda: len(_finals(tg)) == 1, 30)


async def _forward_then_request(tg: TelegramServer, bot, answers: int) -> None:
    """A forward (held up to 10 s for a request, if held), the request typed 2 s after it; ``answers`` in all then."""
    bot._gather.patience, bot._gather.hold = 10.0, 20.0
    _forward(tg, "No tests until Monday.", int(time.time()))
    await asyncio.sleep(2.0)
    _says(tg, "and this?")
    await eventually(lambda: len(_finals(tg)) == answers, 30)


def _asked_in_order(server: OpenAIServer, first: str, then: str) -> None:
    asked = server.requests[-1].json["messages"][-1]["content"]
    assert asked.index(first) < asked.index(then), asked


async def test_a_request_after_a_forward_not_waited_for_still_joins_it_and_is_waited_for_again(tmp_path, tg):
    """guard: a person whose forwards stood alone twice (their third not held for a request) types one after all,
    while the forward's answer is being written: it calls that answer off and joins it, one request in its '…'
    (banteg/takopi#89). Their next forward is held for the request again: the one typed 2 s after it is gathered with
    it before any model is asked (with the one-second wait it would call a begun answer off: two model calls)."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(60)), chunk_interval=0.1) as slow:
        config = bot_config(tmp_path, tg, slow)
        async with running_bot(config, tg) as bot:
            await _joined_after_standing_alone(tg, bot, slow)  # (code before: _stood_alone unused)
            assert len(slow.requests) == 2  # the forward's, called off; the joined one
            _asked_in_order(slow, "We ship on Friday.", "is that realistic?")
            await asyncio.sleep(1.1)
            await _forward_then_request(tg, bot, 2)
        assert len(slow.requests) == 3, [r.json["messages"][-1]["content"] for r in slow.requests]
        _asked_in_order(slow, "No tests until Monday.", "and this?")


async def test_forwards_a_request_joined_do_not_count_as_standing_alone(tmp_path, tg):
    """Forwards whose answer a request typed after them called off and joined were followed, not alone: the count of
    lone forwards is set back to 0 (what the guard above relies on). The called-off turn's own ending then counted
    them as standing alone all the same (it asked 'task not in _joined' right after taking the task out of it): 1, so
    one lone forward later made 2, and the next forward was not held for the request typed 2 s after it — its answer
    begun, then called off for the joined one (two model calls where one was needed)."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(60)), chunk_interval=0.1) as slow:
        config = bot_config(tmp_path, tg, slow)
        async with running_bot(config, tg) as bot:
            await _joined_after_standing_alone(tg, bot, slow)  # the request joined: the count back to 0
            await asyncio.sleep(1.1)
            bot._gather.patience = 1.5
            _forward(tg, "Standup moved to 10:00.", int(time.time()))  # alone: 1
            await eventually(lambda: len(_finals(tg)) == 2, 30)
            await asyncio.sleep(1.1)
            await _forward_then_request(tg, bot, 3)  # the forward held for the request (1 < STOOD_ALONE)
        assert len(slow.requests) == 4, [r.json["messages"][-1]["content"] for r in slow.requests]
        _asked_in_order(slow, "No tests until Monday.", "and this?")
