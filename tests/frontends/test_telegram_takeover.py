"""A comment's turn called off for the forwards that follow it (frontends/telegram.py ``_join_alone``) at the moment
its '…' is on its way to the Bot API. Each test here fails on the code before."""

from __future__ import annotations

import asyncio
import itertools
import time

from modelyard.frontends import streaming
from tests.fakes import Fault, OpenAIServer
from tests.frontends.conftest import ALICE, bot_config, db, eventually, final_message, replies_to, running_bot

ALICE_USER = {"id": ALICE, "is_bot": False, "first_name": "Alice", "language_code": "en"}
PRIVATE = {"id": ALICE, "first_name": "Alice", "type": "private"}
BOB_ORIGIN = {"type": "user", "sender_user": {"id": 222, "is_bot": False, "first_name": "Bob"}}
_IDS = itertools.count(8_000)


def _forwarded(text: str, message_id: int | None = None) -> dict:
    """A message Alice forwards: its text and ``forward_origin`` (core.telegram.org/bots/api#messageorigin)."""
    return {"message": {"message_id": message_id or next(_IDS), "from": ALICE_USER, "date": int(time.time()),
                        "chat": PRIVATE, "text": text,
                        "forward_origin": {**BOB_ORIGIN, "date": int(time.time()) - 3600}}}


async def test_a_placeholder_in_flight_when_the_forwards_take_the_turn_over_takes_their_answer(tmp_path, tg):
    """The comment comes alone in one poll, the forwards in the next (core.telegram.org/bots/api#getupdates: a long
    poll returns with the first update; HKUDS/nanobot#2585). The comment's '…' is sent — the Bot API has taken it, its
    answer slow to come back (a slow link: python-telegram-bot#1045) — when the forwards call its turn off. The call
    was cancelled with the turn: its answer, the '…''s id, dropped, so nothing handed it over; the forwards' answer
    came under a second '…' and the first stayed on screen for good. Now the send is waited for and its '…' takes
    the joined answer."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(20)), chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg) as bot:
            bot._gather.wait = 3.0  # the gathering wait (1 s), made room for a loaded machine between the two polls
            tg.lose_reply(Fault.delay(2.0), when=lambda p: p.get("text") == "…")  # taken, its answer 2 s late
            tg.push_update({"message": {"message_id": next(_IDS), "from": ALICE_USER, "date": int(time.time()),
                                        "chat": PRIVATE, "text": "is this plan any good?"}})
            await eventually(lambda: "…" in replies_to(tg, ALICE), 10)  # on screen; its answer not yet back
            tg.push_update(_forwarded("We ship on Friday."))
            tg.push_update(_forwarded("No tests until Monday."))
            final = await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(1.0)  # a second answer, were there one, would be under way
        asked = llm.requests[-1].json["messages"][-1]["content"]
    assert asked.startswith("is this plan any good?") and "We ship on Friday." in asked
    placeholders = [c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…"]
    assert len(placeholders) == 1, replies_to(tg, ALICE)
    shown = tg.message(ALICE, placeholders[0])
    assert shown is None or shown.get("text") != "…", shown  # it took the answer (or is gone), not left as '…'
    assert final["message_id"] == placeholders[0]
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0


async def test_a_placeholder_whose_answer_was_lost_is_found_and_takes_the_forwards_answer(tmp_path, tg):
    """The comment's '…' was taken by the Bot API but its answer lost — the front's 504 page after the Bot API took it
    (php-telegram-bot/core#353) — so its id is unknown; it was to be looked for once its answer showed. Its turn is then
    taken over by the forwards that follow it: that answer never showed, nothing looked, and the '…' stayed above the
    joined answer for good. Now it is looked for as the turn is handed over, and the joined answer is written there
    (what the comment's turn had begun to write below it deleted)."""
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(40)), chunk_interval=0.1) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg) as bot:
            bot._gather.wait = 3.0  # the gathering wait (1 s), made room for a loaded machine between the two polls
            tg.lose_reply(Fault.status(504, html=True), when=lambda p: p.get("text") == "…")
            tg.push_message(ALICE, text="is this plan any good?", first_name="Alice")
            await eventually(lambda: "…" in replies_to(tg, ALICE), 10)
            await asyncio.sleep(0.3)  # its answer lost and taken as such
            # ids from the chat's one sequence, as a private chat's are: the lost '…' is looked for among them
            tg.push_update(_forwarded("We ship on Friday.", tg._new_message_id()))
            tg.push_update(_forwarded("No tests until Monday.", tg._new_message_id()))
            final = await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(1.0)
        asked = llm.requests[-1].json["messages"][-1]["content"]
    assert asked.startswith("is this plan any good?") and "We ship on Friday." in asked
    lost = next(c.result["message_id"] for c in tg.calls_to("sendMessage") if c.text == "…")
    left = [c.result["message_id"] for c in tg.calls_to("sendMessage") if c.text == "…" and c.result
            and (tg.message(ALICE, c.result["message_id"]) or {}).get("text") == "…"]
    assert not left, replies_to(tg, ALICE)
    assert final["message_id"] == lost
    others = [c.result["message_id"] for c in tg.calls_to("sendMessage") if c.result and c.result["message_id"] != lost]
    assert all(tg.message(ALICE, i) is None for i in others), others  # what the comment's turn began, deleted


async def test_a_placeholder_telegram_carries_out_after_its_turn_was_handed_over_does_not_stay(tmp_path, tg,
                                                                                              monkeypatch):
    """The comment's '…' is held by Telegram — carried out seconds later, under load or over the chat's quota
    (python-telegram-bot#1045: TimedOut, "but still delivers them") — when the forwards take its turn over. After the
    wait for it (PLACEHOLDER_SETTLE, 10 s: shortened here) the send was cancelled and the '…' looked for at once: not
    there yet, nothing found, and when Telegram carried the call out it showed above the joined answer for good. Now the
    send is let run, and a '…' that lands after the answer went elsewhere is deleted."""
    monkeypatch.setattr(streaming, "PLACEHOLDER_SETTLE", 1.0)
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(20)), chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg) as bot:
            bot._gather.wait = 3.0  # the gathering wait (1 s), made room for a loaded machine between the two polls
            tg.carry_out_late(4.0, when=lambda p: p.get("text") == "…")
            tg.push_message(ALICE, text="is this plan any good?", first_name="Alice")
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(0.5)  # its '…' on its way, held by Telegram
            tg.push_update(_forwarded("We ship on Friday.", tg._new_message_id()))
            tg.push_update(_forwarded("No tests until Monday.", tg._new_message_id()))
            await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: len([c for c in tg.calls_to("sendMessage") if c.text == "…" and c.ok]) == 2, 15)
            await asyncio.sleep(1.0)  # the late one handled
        asked = llm.requests[-1].json["messages"][-1]["content"]
    assert asked.startswith("is this plan any good?") and "We ship on Friday." in asked
    left = [c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…"
            and (tg.message(ALICE, c.result["message_id"]) or {}).get("text") == "…"]
    assert not left, replies_to(tg, ALICE)
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0



def _stopped(params: dict) -> bool:
    return "[stopped]" in str(params.get("text"))


async def test_a_placeholder_that_lands_while_the_final_text_is_refused_takes_it(tmp_path, tg, monkeypatch):
    """/stop comes while the answer's '…' is held by Telegram (carried out seconds later: python-telegram-bot#1045);
    the final text, "[stopped]", meets Telegram's front answering 502 (Bad Gateway, its nginx page: the load that held
    the '…'), tried again through the outage — and the '…' lands between two tries, nothing of the answer on screen.
    It was deleted as one landing after its answer went elsewhere, and "[stopped]" came as a new message once a try got
    through. Now the next try edits it: one message, where the '…' showed."""
    monkeypatch.setattr(streaming, "PLACEHOLDER_SETTLE", 0.5)
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(20)), chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.carry_out_late(3.0, when=lambda p: p.get("text") == "…")
            for _ in range(4):  # tries 0.5 + 1 + 2 + 4 s apart: the '…' lands before the fifth
                tg.refuse(Fault.status(502, html=True), when=_stopped)
            tg.push_message(ALICE, text="is this plan any good?", first_name="Alice")
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(0.3)  # its '…' on its way, held by Telegram
            tg.push_message(ALICE, text="/stop", first_name="Alice")
            await eventually(lambda: any(_stopped(c.params) for c in tg.sent), 30)
            await asyncio.sleep(1.0)  # a late '…' retired, were it to be
    placeholder = next(c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…")
    assert (tg.message(ALICE, placeholder) or {}).get("text") == "[stopped]", replies_to(tg, ALICE)
    assert not [c for c in tg.calls_to("sendMessage") if c.ok and _stopped(c.params)], replies_to(tg, ALICE)


async def test_a_placeholder_that_lands_while_the_final_text_is_on_its_way_is_retired(tmp_path, tg, monkeypatch):
    """guard: the '…' (held by Telegram, python-telegram-bot#1045) lands while the final text's sendMessage, held too,
    is on its way: that message is the answer, and the '…' — which may show below it — is deleted, not taken."""
    monkeypatch.setattr(streaming, "PLACEHOLDER_SETTLE", 0.5)
    with OpenAIServer(reply_text=" ".join(f"w{i}" for i in range(20)), chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.carry_out_late(2.5, when=lambda p: p.get("text") == "…")
            tg.carry_out_late(3.0, when=_stopped)
            tg.push_message(ALICE, text="is this plan any good?", first_name="Alice")
            await eventually(lambda: not tg.pending_updates, 10)
            await asyncio.sleep(0.3)
            tg.push_message(ALICE, text="/stop", first_name="Alice")
            await eventually(lambda: any(_stopped(c.params) for c in tg.sent), 30)
            await asyncio.sleep(1.0)
    placeholder = next(c.result["message_id"] for c in tg.calls_to("sendMessage") if c.ok and c.text == "…")
    assert tg.message(ALICE, placeholder) is None, replies_to(tg, ALICE)
    assert [c for c in tg.calls_to("sendMessage") if c.ok and _stopped(c.params)], replies_to(tg, ALICE)
