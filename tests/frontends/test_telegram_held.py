"""A finished answer the Bot API does not take yet (an outage, flood control): what /stop, the chat's next messages,
/status and /healthz do meanwhile, and an answer held for days.

Shapes: the Bot API's front answering 502 while Telegram is down (python-telegram-bot#1095,
rubenlagus/TelegramBots#417); 409 Conflict "terminated by other getUpdates request" when another process polls the
token (python-telegram-bot#313, anasty17/mirror-leech-telegram-bot#1021), which the fake answers a poll that a newer
one overtook; the 48 hours a bot may edit its message in a private chat or a group (tests/fakes/telegram.py,
EDIT_WINDOW).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
import yaml

from modelyard.frontends import streaming
from modelyard.gateway import hosting as hosting_module
from modelyard.gateway.app import create_app
from modelyard.gateway.hosting import Hosting
from modelyard.runtime import open_runtime
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.frontends.conftest import (
    ALICE,
    BOB,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    replies_to,
    running_bot,
)

HELD = "sent when the Bot API answers again"  # the bot's warning as it starts trying a held answer again


def inbox_states(config) -> list[str]:
    with db(config) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM telegram_inbox ORDER BY update_id")]


def first_word(body: dict) -> str:
    """The fake model's answer names the question it answers: 'Answer: alpha' to 'alpha question'."""
    return f"Answer: {body['messages'][-1]['content'].split()[0]}"


@pytest.fixture
def edits_down(monkeypatch) -> TelegramServer:
    """editMessageText answers 502 (Telegram's front in an outage); sends go through, so the placeholder shows and
    the chat can still be told things. The final message's outage window is 0.5 s (120 s in the bot)."""
    monkeypatch.setattr(streaming, "FINAL_OUTAGE", 0.5)
    with TelegramServer(fault_methods=["editMessageText"]) as tg:
        tg.set_default(Fault.status(502))
        yield tg


async def test_a_stop_while_a_finished_answer_waits_for_telegram_does_not_drop_it(tmp_path, llm, edits_down, caplog):
    """/stop ends what is being written. Sent while a finished answer waited for the Bot API (held by an outage or
    flood control), it cancelled the retries and marked the message handled: the answer was never shown."""
    tg = edits_down
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        await eventually(lambda: HELD in caplog.text, 30)
        tg.push_message(ALICE, text="/stop")
        stopped = await eventually(lambda: [r for r in replies_to(tg, ALICE) if r.startswith("Stopped.")], 10)
        tg.faults.clear()
        final = await eventually(final_message(tg, ALICE), 30)
        await eventually(lambda: inbox_states(config) == ["done", "done"], 10)
    assert final["text"].startswith(REPLY) and final["reply_markup"]
    assert "1 finished answer(s) here are still on their way" in stopped[0]
    with db(config) as conn:
        assert [r[0] for r in conn.execute("SELECT outcome FROM requests")] == ["ok"]


async def test_messages_sent_while_an_answer_waits_for_telegram_are_answered_meanwhile_and_shown_in_order(
        tmp_path, edits_down, caplog):
    """The held answer kept its chat's lock for the whole outage: the person's next messages waited unanswered
    (the model idle) until Telegram was back. Now they are answered meanwhile — nothing shown before the held
    answer — and shown after it, in the order sent, once Telegram takes them."""
    tg = edits_down
    with OpenAIServer(reply_text=first_word, chunk_interval=0.01) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="alpha question")
            await eventually(lambda: HELD in caplog.text, 30)
            tg.push_message(ALICE, text="beta question")
            tg.push_message(ALICE, text="gamma question")
            await eventually(lambda: len(llm.requests) == 3, 10)  # answered while the first is held
            await asyncio.sleep(0.5)
            assert [c.text for c in tg.calls_to("sendMessage") if c.ok] == ["…"]  # nothing ahead of the first
            tg.faults.clear()
            await eventually(lambda: inbox_states(config) == ["done"] * 3, 60)
    finals = [c for c in tg.sent if c.params.get("reply_markup")]
    assert [c.text.split("\n")[0] for c in finals] == ["Answer: alpha", "Answer: beta", "Answer: gamma"]
    ids = [c.result["message_id"] for c in finals]
    assert ids == sorted(ids)  # the chat shows them in the order asked
    asked = [m["content"] for m in llm.requests[2].json["messages"] if m["role"] != "system"]
    assert "Answer: alpha" in asked[1] and "Answer: beta" in asked[3]  # each in the history of the next
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_status_counts_the_finished_answers_waiting_for_telegram(tmp_path, llm, edits_down, caplog):
    """/status said how many answers were being written and waiting for a model, not that one was finished and
    held back by Telegram — the one thing the person waiting for it wants to know."""
    tg = edits_down
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        await eventually(lambda: HELD in caplog.text, 30)
        tg.push_message(BOB, text="/status")
        status = await eventually(lambda: [r for r in replies_to(tg, BOB) if "Models" in r], 10)
        tg.faults.clear()
        await eventually(final_message(tg, ALICE), 30)
        tg.push_message(BOB, text="/status")
        again = await eventually(lambda: [r for r in replies_to(tg, BOB) if "Models" in r][1:], 10)
    assert "1 finished and waiting to be delivered" in status[0]
    assert "0 finished and waiting to be delivered" in again[0]


async def test_an_answer_held_for_two_days_is_still_shown(tmp_path, llm, edits_down, caplog):
    """Held past a day (the bot stopped during a long outage): the next start dropped it with the unanswered
    messages older than 24 h — though it was answered; and its placeholder, two days old, can no longer be edited
    ('message can't be edited'), which kept it for a next start again. It is shown, as a new message."""
    tg = edits_down
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="hello there")
        await eventually(lambda: HELD in caplog.text, 30)
    assert inbox_states(config) == ["answered"]
    placeholder = tg.calls_to("sendMessage")[0].result["message_id"]
    tg.faults.clear()
    tg.age(ALICE, placeholder, 49 * 3600)
    with db(config) as conn:
        conn.execute("UPDATE telegram_inbox SET received = received - ?", (49 * 3600,))
    async with running_bot(config, tg):
        final = await eventually(final_message(tg, ALICE), 30)
        await eventually(lambda: inbox_states(config) == ["done"], 10)
    assert final["text"].startswith(REPLY) and final["message_id"] != placeholder
    assert any(c.error == "Bad Request: message can't be edited" for c in tg.calls_to("editMessageText"))
    assert len(llm.requests) == 1


async def test_healthz_shows_another_poller_on_the_bot_token(tmp_path: Path, monkeypatch, llm):
    """Another process polling with the bot's token (409 Conflict): Telegram gives each message to one of them, so
    this bot misses some. It was a warning in the log; /healthz said "telegram": "running" and "status": "ok"."""
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(hosting_module, "BOT_RETRY", (0.1, 0.3))
    with TelegramServer() as tg:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "models": {"m": {"provider": "openai", "endpoint": f"{llm.url}/v1", "max_concurrent": 2}},
            "agents": {"chat": {"primary": "m"}},
            "log": {"path": str(tmp_path / "log.db")},
            "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE]}}))
        runtime = open_runtime(config)
        hosted = Hosting(runtime, "http://127.0.0.1:1", telegram_token=tg.token, announce_line=lambda _: None)
        app = create_app(runtime, hosting=hosted)

        async def healthz() -> dict:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                return (await client.get("/healthz")).json()

        async def other_poller() -> None:  # another machine's bot on the same token
            async with httpx.AsyncClient(timeout=5) as client:
                while True:
                    await client.post(f"{tg.api_url}/getUpdates", json={"timeout": 1})

        try:
            async with hosted:
                await eventually(lambda: hosted.bot_state == "running", 15)
                calm = await healthz()
                other = asyncio.create_task(other_poller())
                try:
                    for _ in range(150):
                        body = await healthz()
                        if body.get("telegram_bot", {}).get("polling") == "conflict":
                            break
                        await asyncio.sleep(0.1)
                finally:
                    other.cancel()
        finally:
            await runtime.aclose()
    assert calm["status"] == "ok" and calm["telegram_bot"]["polling"] == "ok" and calm["telegram"] == "running"
    assert body["status"] == "degraded" and body["telegram_bot"]["polling"] == "conflict"
    assert "terminated by other getUpdates request" in body["telegram_bot"]["last_error"]
    assert body["telegram_bot"]["answers_waiting"] == 0 and tg.token not in str(body)
