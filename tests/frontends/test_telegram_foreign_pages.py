"""A 200 whose body is not the Bot API's JSON: something between the bot and Telegram answered in its place.

The Bot API always answers its envelope ("The response contains a JSON object, which always has a Boolean field 'ok'",
core.telegram.org/bots/api#making-requests). Two things answer 200 with something else, and they differ in what was
done. A captive portal (a hotel or train Wi-Fi before its login; an ISP's block page) answers every request with its
own page and reaches nothing — the fake's ``intercept``, its page shaped on a hotspot's login redirect (tests/fakes/
telegram.py, CAPTIVE_PORTAL, with its sources): the call must be made again. A relay that passed the call on and mangled
the answer coming back — a PHP script printing its warning ahead of the JSON (``garble_reply(php_warning_first)``), a
body cut short (``lose_reply(Fault.invalid_json())``: ``{"ok": true, "result": {"message_id": ``) — did carry it out:
sent again, it shows twice. python-telegram-bot raised a bare ``TelegramError('Invalid server response')`` for both
(telegram/request/_baserequest.py, parse_json_payload; python-telegram-bot#1009 and #196, reported after hours of
running, gone by itself the next day) and logged the page whole with a traceback. Each test here fails on the code
before the fix.
"""

from __future__ import annotations

import contextlib
import logging

import pytest

from modelyard.frontends.streaming import PLACEHOLDER, maybe_sent
from modelyard.frontends.telegram_request import ForeignAnswer
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.fakes.telegram import php_warning_first
from tests.frontends.conftest import (
    ALICE,
    BOB,
    LONG,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    running_bot,
    with_buttons,
)


def _on_screen(tg: TelegramServer, chat_id: int) -> list[str]:
    """The texts of the bot's messages in the chat now, in the order sent (deleted ones gone)."""
    shown = (tg.message(chat_id, c.result["message_id"]) for c in tg.calls_to("sendMessage")
             if c.chat_id == chat_id and c.ok)
    return [m["text"] for m in shown if m is not None]


def _states(config) -> list[str]:
    with db(config) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM telegram_inbox ORDER BY update_id")]


def _quiet(caplog) -> None:
    """No page in the log, no traceback: python-telegram-bot's 'Can not load invalid JSON data' logged it whole."""
    assert "<html" not in caplog.text.lower() and "<br />" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(("answer", "method"), [("short", "editMessageText"), ("long", "sendMessage")])
async def test_a_final_answer_met_by_a_captive_portal_is_sent_once_the_network_is_back(
        tmp_path, tg: TelegramServer, llm, long_llm, caplog, answer, method):
    """The final message (its edit, or the last part of a long answer sent new) met a Wi-Fi's login page four times:
    three tries in 1.5 s, then kept for the next start — the person saw no answer while the bot ran on. Now it is an
    outage: tried until the portal lets it through, shown once, its inbox row done."""
    config = bot_config(tmp_path, tg, llm if answer == "short" else long_llm,
                        **({} if answer == "short" else {"edit_interval": 30}))
    tg.intercept(method=method, calls=4, when=with_buttons)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
        await eventually(lambda: _states(config) == ["done"], 10)
    portal = [c for c in tg.calls_to(method) if c.chat_id == ALICE and not c.ok and with_buttons(c.params)]
    assert len(portal) == 4  # every page met, none taken for a sent message
    if answer == "long":  # both parts on screen, the last once
        shown = " ".join(_on_screen(tg, ALICE))
        assert "word0 " in shown and shown.count("word899") == 1 and "word899" in final["text"]
    else:
        assert final["text"].startswith(REPLY) and _on_screen(tg, ALICE) == [final["text"]]
    assert "Hotspot login: not the Bot API's answer" in caplog.text
    _quiet(caplog)


async def test_a_placeholder_whose_answer_a_php_relay_wrapped_is_edited_not_left_behind(tmp_path, tg: TelegramServer,
                                                                                         llm, caplog):
    """The placeholder's sendMessage went through a relay that printed a PHP warning ahead of the Bot API's answer:
    'Invalid server response', the '…' left on screen above the answer sent as a second message. The answer is whole
    inside that body: taken from there, the placeholder's id is known and the answer written into it."""
    config = bot_config(tmp_path, tg, llm)
    tg.garble_reply(php_warning_first, when=lambda params: params.get("text") == PLACEHOLDER)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
        tg.push_callback(ALICE, final["message_id"], data="rate:1")
        rated = await eventually(lambda: tg.calls_to("answerCallbackQuery"), 10)
    assert final["text"].startswith(REPLY)
    assert _on_screen(tg, ALICE) == [final["text"]]  # one message: the placeholder, now the answer
    assert rated[0].params.get("text") == "Thanks — noted 👍"  # its id came back: linked to the request
    assert "taken from inside it" in caplog.text
    _quiet(caplog)


async def test_a_placeholder_whose_answer_a_relay_cut_short_is_not_left_on_screen(tmp_path, tg: TelegramServer, llm,
                                                                                  caplog):
    """The placeholder's sendMessage was carried out and its answer came back cut short by a relay
    ('{"ok": true, "result": {"message_id": '): taken for a failed send, the '…' stayed above the answer. It is a lost
    answer (the start of the Bot API's envelope shows it reached Telegram): not sent again, found and deleted."""
    config = bot_config(tmp_path, tg, llm)
    tg.lose_reply(Fault.invalid_json(), when=lambda params: params.get("text") == PLACEHOLDER)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
        await eventually(lambda: tg.calls_to("deleteMessage"), 10)
    assert final["text"].startswith(REPLY)
    assert _on_screen(tg, ALICE) == [final["text"]]
    assert len([c for c in tg.calls_to("sendMessage") if c.chat_id == ALICE and c.text == PLACEHOLDER]) == 1
    assert "mangled by a relay" in caplog.text
    _quiet(caplog)


#: what came back in place of the Bot API's answer, the call carried out: an empty 200 (irazasyed/telegram-bot-sdk#1057:
#: "i've set proxy on guzzle client … http response 200 but body is empty"), a relay's own page
@pytest.mark.parametrize("relay_said", [b"", b"<html><head><title>Forwarded</title></head><body>OK</body></html>"],
                         ids=["empty_200", "relays_own_page"])
async def test_a_placeholder_a_relay_carried_out_and_answered_for_is_not_left_on_screen(tmp_path, tg: TelegramServer,
                                                                                        llm, caplog, relay_said):
    """Alice's placeholder went through a relay that carried it out and answered with nothing of the Bot API's (an
    empty 200, a page of its own): taken for a captive portal's page (nothing done), the '…' stayed on screen above
    the answer. Bob's met a portal, which reached nothing. The page cannot tell them apart; what is on screen can,
    once the answer shows: an edit to '…' is 'not modified' only where that '…' is. Alice's is found and deleted;
    in Bob's chat no '…' answers so, and nothing of his is touched."""
    config = bot_config(tmp_path, tg, llm)
    tg.garble_reply(lambda envelope: relay_said, when=lambda p: p.get("text") == PLACEHOLDER and p["chat_id"] == ALICE)
    tg.intercept(when=lambda params: params.get("text") == PLACEHOLDER and params["chat_id"] == BOB)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        alice = await eventually(final_message(tg, ALICE), 30)
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: tg.calls_to("deleteMessage"), 10)
        tg.push_message(BOB, text="hello too")
        bob = await eventually(final_message(tg, BOB), 30)
    assert alice["text"].startswith(REPLY) and bob["text"].startswith(REPLY)
    assert _on_screen(tg, ALICE) == [alice["text"]], "the relay's '…' is still on screen above the answer"
    assert _on_screen(tg, BOB) == [bob["text"]]
    assert not [c for c in tg.calls_to("editMessageText") if c.chat_id == BOB and c.ok and c.text == PLACEHOLDER]
    _quiet(caplog)


@pytest.mark.parametrize(("relayed", "maybe"), [(False, False), (True, True)], ids=["portal", "relay"])
def test_a_portals_page_was_not_carried_out_a_mangled_answer_was(relayed, maybe):
    assert maybe_sent(ForeignAnswer(200, "Hotspot login", relayed=relayed)) is maybe


async def test_a_bot_started_behind_a_captive_portal_starts_once_it_lets_through(tmp_path, tg: TelegramServer, llm,
                                                                                 caplog):
    """getMe at start met the Wi-Fi's login page (a laptop opened on a hotel network): 'Invalid server response' was
    no NetworkError, so the start was not tried again and the bot failed to start. Now it is tried as an outage."""
    config = bot_config(tmp_path, tg, llm)
    tg.intercept(method="getMe", calls=2)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
    assert final["text"].startswith(REPLY)
    assert len([c for c in tg.calls_to("getMe") if not c.ok]) == 2
    assert "getMe failed (ForeignAnswer)" in caplog.text
    _quiet(caplog)


async def test_flood_control_a_php_relay_wrapped_in_a_200_is_still_flood_control(tmp_path, tg: TelegramServer, llm,
                                                                                 caplog):
    """The relay answers 200 whatever the Bot API said: a 429 with its retry_after, wrapped, was 'Invalid server
    response' — the wait unknown. Read from inside the page it is flood control again, waited out, and the answer
    shown (written as a new message, the placeholder having been refused)."""
    config = bot_config(tmp_path, tg, llm)
    tg.garble_reply(php_warning_first, when=lambda params: params.get("text") == PLACEHOLDER)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.flood(2, chat_id=ALICE)  # the placeholder comes within it (the bot started: the poll answers at once)
        tg.push_message(ALICE, text="hello there")
        final = await eventually(final_message(tg, ALICE), 30)
    assert final["text"].startswith(REPLY) and _on_screen(tg, ALICE) == [final["text"]]
    assert "placeholder in chat 111 refused (flood control" in caplog.text
    _quiet(caplog)


def _helps(tg: TelegramServer, chat_id: int) -> list[str]:
    return [text for text in _on_screen(tg, chat_id) if "/agent NAME" in text]


@pytest.mark.parametrize("relay_said", [b"", b"<html><head><title>Forwarded</title></head><body>OK</body></html>"],
                         ids=["empty_200", "relays_own_page"])
async def test_a_commands_reply_a_relay_carried_out_and_answered_for_shows_once(tmp_path, tg: TelegramServer, llm,
                                                                               caplog, relay_said):
    """Alice's /help reply went through a relay that carried the sendMessage out and answered with nothing of the Bot
    API's (an empty 200 — irazasyed/telegram-bot-sdk#1057 —, a page of its own): taken for a captive portal's page,
    the reply was sent again and showed twice. Bob's met a portal, which reached nothing: it must be sent again. The
    reply is now looked for before it is sent again (an edit to its text is 'not modified' only where it is on
    screen): Alice's found, not sent again; Bob's not found, sent again. Each shows once."""
    config = bot_config(tmp_path, tg, llm)

    def helps(chat_id: int):
        return lambda params: "/agent NAME" in str(params.get("text")) and params["chat_id"] == chat_id

    tg.garble_reply(lambda envelope: relay_said, when=helps(ALICE))
    tg.intercept(when=helps(BOB))
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/help")
        tg.push_message(BOB, text="/help")
        await eventually(lambda: _helps(tg, ALICE) and _helps(tg, BOB), 10)
        with contextlib.suppress(TimeoutError):  # a second copy would come within the retries' pauses (0.5 s, 1 s)
            await eventually(lambda: len(_helps(tg, ALICE)) > 1, 3)
    assert len(_helps(tg, ALICE)) == 1, "the relay's reply was sent again and shows twice"
    assert len(_helps(tg, BOB)) == 1
    assert len([c for c in tg.calls_to("sendMessage") if helps(BOB)(c.params)]) == 2  # the portal's, then through
    assert "the reply a page answered for is on screen" in caplog.text
    _quiet(caplog)


async def test_the_last_part_of_an_answer_a_relay_answered_for_shows_once(tmp_path, tg: TelegramServer, long_llm,
                                                                         caplog):
    """A long answer's last part (the message with 👍/👎) went through a relay that carried it out and answered with
    an empty 200: taken for a portal's page, an outage, it was sent again and the end of the answer showed twice (its
    first copy with buttons tied to nothing). Bob's met a captive portal and was not carried out. Each part is looked
    for before it is sent again: Alice's is found (and rated as hers), Bob's sent again; each end shows once."""
    config = bot_config(tmp_path, tg, long_llm, edit_interval=30)
    tg.garble_reply(lambda envelope: b"", when=lambda p: with_buttons(p) and p["chat_id"] == ALICE)
    tg.intercept(when=lambda p: with_buttons(p) and p["chat_id"] == BOB)
    caplog.set_level(logging.INFO)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="write a long one")
        await eventually(lambda: "chat 111 answered by" in caplog.text, 30)
        tg.push_message(BOB, text="write a long one")
        await eventually(lambda: "chat 222 answered by" in caplog.text, 30)
        tg.push_callback(ALICE, final_message(tg, ALICE)()["message_id"], data="rate:1")
        rated = await eventually(lambda: tg.calls_to("answerCallbackQuery"), 10)
    for chat in (ALICE, BOB):
        shown = " ".join(_on_screen(tg, chat))
        assert "word0 " in shown and shown.count("word899") == 1, f"chat {chat}: the answer's end shows twice"
        assert final_message(tg, chat)()["text"].endswith("word899\n\n— chat · local")
    assert rated[0].params.get("text") == "Thanks — noted 👍"  # the part found is linked to its request
    _quiet(caplog)


async def test_a_streamed_part_a_relay_answered_for_gets_the_final_text(tmp_path, tg: TelegramServer, caplog):
    """While a long answer streamed, its second part's sendMessage went through a relay that carried it out and
    answered with an empty 200: taken for a portal's page, the part was sent again at the next edit — the answer's
    second half shown twice or more, the first copies cut off. It is not sent again while the answer streams; once the
    answer is complete it is found and the final text, with the buttons, is edited into it."""
    caplog.set_level(logging.INFO)
    with OpenAIServer(reply_text=LONG, chunk_interval=0.002) as llm:
        config = bot_config(tmp_path, tg, llm)
        tg.garble_reply(lambda envelope: b"", when=lambda p: (p.get("text") != PLACEHOLDER and not with_buttons(p)
                                                             and not str(p.get("text")).startswith("word0 ")))
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="write a long one")
            await eventually(lambda: "answered by" in caplog.text, 30)
    texts = _on_screen(tg, ALICE)
    assert len(texts) == 2 and " ".join(texts).count("word899") == 1, [t[:30] for t in texts]
    assert final_message(tg, ALICE)()["text"].endswith("word899\n\n— chat · local")
    _quiet(caplog)


async def test_a_part_lost_after_a_reply_lost_and_found_in_the_same_chat_is_looked_for_too(tmp_path, tg: TelegramServer,
                                                                                          caplog):
    """While Alice's long answer streamed she sent /help: its reply went through a relay that carried it out and
    answered with an empty 200, and was found on screen (not sent again). Then the answer's last part met the same
    relay. Every send lost since her question counted against looking for it — the /help reply too, though found —
    so the part was sent again and the answer's end showed twice. A lost send found on screen is no unknown message
    an edit could change: the part is looked for, found, and shows once."""
    caplog.set_level(logging.INFO)
    with OpenAIServer(reply_text=LONG, chunk_interval=0.01) as llm:
        config = bot_config(tmp_path, tg, llm, edit_interval=30)
        tg.garble_reply(lambda envelope: b"", when=lambda p: "/agent NAME" in str(p.get("text")))
        tg.garble_reply(lambda envelope: b"", when=with_buttons)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="write a long one")
            await eventually(lambda: PLACEHOLDER in _on_screen(tg, ALICE), 20)
            tg.push_message(ALICE, text="/help")
            await eventually(lambda: "the reply a page answered for is on screen" in caplog.text, 20)
            assert "answered by" not in caplog.text, "the answer ended before the /help reply: the test proves nothing"
            await eventually(lambda: "chat 111 answered by" in caplog.text, 60)
    shown = " ".join(_on_screen(tg, ALICE))
    assert "word0 " in shown and shown.count("word899") == 1, "the answer's end shows twice"
    assert len(_helps(tg, ALICE)) == 1
    assert final_message(tg, ALICE)() is not None
    _quiet(caplog)
