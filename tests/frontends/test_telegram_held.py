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
from contextlib import asynccontextmanager
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
from tests.fakes.server import poll
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


async def test_answers_waiting_behind_a_held_one_when_the_bot_stops_are_shown_in_order_at_the_next_start(
        tmp_path, edits_down, caplog):
    """The bot stopped while the chat's later answers waited behind the held one: each stays in the inbox,
    answered; the next start shows all of them, in order, without asking the model again."""
    tg = edits_down
    with OpenAIServer(reply_text=first_word, chunk_interval=0.01) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="alpha question")
            await eventually(lambda: HELD in caplog.text, 30)
            tg.push_message(ALICE, text="beta question")
            tg.push_message(ALICE, text="gamma question")
            await eventually(lambda: len(llm.requests) == 3, 10)
            await eventually(lambda: inbox_states(config) == ["answered"] * 3, 10)
        assert inbox_states(config) == ["answered"] * 3
        tg.faults.clear()
        async with running_bot(config, tg):
            await eventually(lambda: inbox_states(config) == ["done"] * 3, 30)
    finals = [c for c in tg.sent if c.params.get("reply_markup")]
    assert [c.text.split("\n")[0] for c in finals] == ["Answer: alpha", "Answer: beta", "Answer: gamma"]
    ids = [c.result["message_id"] for c in finals]
    assert ids == sorted(ids) and len(llm.requests) == 3
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


@asynccontextmanager
async def served_bot(tmp_path: Path, tg: TelegramServer, llm: OpenAIServer):
    """``serve`` running the bot (Hosting), and its /healthz as a call."""
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

    try:
        async with hosted:
            await eventually(lambda: hosted.bot_state == "running", 15)
            yield healthz
    finally:
        await runtime.aclose()


async def healthz_until(healthz, polling: str, timeout: float = 15.0) -> dict:
    """/healthz once its telegram_bot.polling says ``polling`` (or the last one after ``timeout``)."""
    for _ in range(int(timeout * 10)):
        body = await healthz()
        if body.get("telegram_bot", {}).get("polling") == polling:
            break
        await asyncio.sleep(0.1)
    return body


@pytest.fixture
def in_serve(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(hosting_module, "BOT_RETRY", (0.1, 0.3))


async def test_healthz_shows_another_poller_on_the_bot_token(tmp_path: Path, in_serve, tg, llm):
    """Another process polling with the bot's token (409 Conflict): Telegram gives each message to one of them, so
    this bot misses some. It was a warning in the log; /healthz said "telegram": "running" and "status": "ok"."""

    async def other_poller() -> None:  # another machine's bot on the same token
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                await client.post(f"{tg.api_url}/getUpdates", json={"timeout": 1})

    async with served_bot(tmp_path, tg, llm) as healthz:
        calm = await healthz()
        other = asyncio.create_task(other_poller())
        try:
            body = await healthz_until(healthz, "conflict")
        finally:
            other.cancel()
    assert calm["status"] == "ok" and calm["telegram_bot"]["polling"] == "ok" and calm["telegram"] == "running"
    assert body["status"] == "degraded" and body["telegram_bot"]["polling"] == "conflict"
    assert "terminated by other getUpdates request" in body["telegram_bot"]["last_error"]
    assert body["telegram_bot"]["answers_waiting"] == 0 and tg.token not in str(body)


async def test_a_token_revoked_while_the_bot_runs_in_serve_is_said_in_healthz(tmp_path: Path, in_serve, tg, llm,
                                                                              caplog):
    """The token revoked in @BotFather while the bot runs: getUpdates answers 401, python-telegram-bot ends its
    polling loop for good, and the bot took no message any more — while /healthz said "telegram": "running"."""
    async with served_bot(tmp_path, tg, llm) as healthz:
        tg.revoke()
        tg.push_message(ALICE, text="/help")  # the poll under way returns it; the next one is refused
        body = await healthz_until(healthz, "stopped")
    assert body["telegram"] == "stopped: Telegram rejected the token" and body["status"] == "degraded"
    assert body["telegram_bot"]["polling"] == "stopped"
    assert [r for r in caplog.records if "refuses the bot token now" in r.getMessage()]


def test_modelyard_telegram_exits_when_its_token_is_revoked(tmp_path: Path, tg, llm):
    """`modelyard telegram` whose token is revoked while it runs ran on, polling nothing, answering nobody, exit
    code none — a service manager saw it healthy. It exits 1 and says what to do."""
    from tests.frontends.test_telegram_durability import Bot

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": f"{llm.url}/v1"}}, "agents": {"chat": {"primary": "m"}},
        "log": {"path": str(tmp_path / "log.sqlite")},
        "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE]}}))
    bot = Bot(config, tmp_path, "bot", tg.token)
    try:
        poll(lambda: "running; routing log" in (tmp_path / "bot.err").read_text(), 60)
        tg.revoke()
        tg.push_message(ALICE, text="/help")  # the poll under way returns it; the next one is refused
        code = bot.proc.wait(30)
    finally:
        bot.stop()
    err = (tmp_path / "bot.err").read_text()
    assert code == 1, err[-2000:]
    assert "Telegram refuses the bot token in TELEGRAM_BOT_TOKEN now" in err and "123456:TEST-TOKEN" not in err
    assert "During handling of the above exception" not in err  # no traceback as it stops


async def test_polling_that_gets_no_answer_is_said_to_be_stalled(tmp_path, llm, monkeypatch):
    """getUpdates never answered (a connection gone silent: each poll runs into its read timeout, which
    python-telegram-bot retries without calling the error callback, so without a word in the log; or its polling
    loop stopped with no error, python-telegram-bot#4069). /healthz said "ok" while no message came in."""
    from modelyard.frontends import telegram

    monkeypatch.setattr(telegram, "STALL_AFTER", 1.0)  # 60 s past the poll's own timeout in the bot
    with TelegramServer(fault_methods=["getUpdates"]) as tg:
        tg.set_default(Fault.hang_before_headers())
        async with running_bot(bot_config(tmp_path, tg, llm), tg) as bot:
            await eventually(lambda: bot.health()["polling"] == "stalled", 15)
            tg.faults.clear()
            tg.push_message(ALICE, text="hello there")
            final = await eventually(final_message(tg, ALICE), 30)
            await eventually(lambda: bot.health()["polling"] == "ok", 10)
    assert final["text"].startswith(REPLY)


async def test_one_groups_flood_control_holds_only_that_groups_answer(tmp_path, tg, monkeypatch, caplog):
    """Flood control is per chat too (a group: about 20 messages a minute). A group's answer held by it waits out
    its retry_after; a private chat asking meanwhile is answered at once, and the group's answer then arrives."""
    monkeypatch.setattr(streaming, "_MAX_BACKOFF", 0.5)  # a 4 s wait is "long": the answer is held, not slept on
    group = -4_000_000_042
    words = " ".join(f"w{i}" for i in range(50))  # the answer streams for a second: the flood meets its final message
    with OpenAIServer(reply_text=lambda body: f"{first_word(body)} {words}", chunk_interval=0.02) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, group, "@modelyard_test_bot alpha question")
            await eventually(lambda: [c for c in tg.calls_to("sendMessage") if c.chat_id == group and c.ok], 10)
            tg.flood(4, chat_id=group)
            await eventually(lambda: HELD in caplog.text, 30)
            tg.push_message(BOB, text="beta question")
            private = await eventually(final_message(tg, BOB), 10)
            assert final_message(tg, group)() is None
            shown = await eventually(final_message(tg, group), 30)
    assert private["text"].startswith("Answer: beta") and shown["text"].startswith("Answer: alpha")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
