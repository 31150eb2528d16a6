"""The Telegram bot loses no message: a real ``modelyard telegram`` process killed with -9 mid-answer, started again.

Telegram forgets an update once a getUpdates call passes a higher offset, and python-telegram-bot makes that
call at once after taking it — long before the answer is written. The fake Bot API keeps that rule (an update
below the offset is gone), so the old bot, killed mid-answer, never answered that message after its restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard.frontends import telegram_inbox
from modelyard.frontends.telegram import HELP, RESTARTED_NOTE, STOPPED_NOTE, TelegramBot, TelegramSetupError
from modelyard.runtime import open_runtime
from tests.fakes import Fault, OpenAIServer, TelegramServer
from tests.fakes.server import poll
from tests.frontends.conftest import (
    ALICE,
    REPLY,
    bot_config,
    db,
    eventually,
    final_message,
    replies_to,
    running_bot,
)
from tests.frontends.test_telegram import ask

WORDS = " ".join(f"word{i}" for i in range(200))  # 200 chunks, 0.05 s apart: a 10 s answer


class Bot:
    """``python -m modelyard telegram`` with its output in files."""

    def __init__(self, config: Path, directory: Path, name: str, token: str):
        env = {**os.environ, "MODELYARD_DATA_DIR": str(directory / "data"), "TELEGRAM_BOT_TOKEN": token}
        env.pop("MODELYARD_STATE", None)
        self.err = directory / f"{name}.err"
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "modelyard", "telegram", "--local", "--config",
                                          str(config)], stdout=err, stderr=err, env=env, stdin=subprocess.DEVNULL)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, OpenAIServer, TelegramServer]]:
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm, TelegramServer() as tg:
        data: dict[str, Any] = {
            "models": {"local": {"provider": "openai", "endpoint": f"{llm.url}/v1", "model": "qwen",
                                 "context": 4096}},
            "agents": {"chat": {"primary": "local", "max_tokens": 256}},
            "default_agent": "chat",
            "log": {"path": str(tmp_path / "log.sqlite")},
            "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE], "agent": "chat", "edit_interval": 0.1},
        }
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        yield config, llm, tg


def finals(tg: TelegramServer) -> list[dict[str, Any]]:
    """The answers shown with their rating buttons (final edits or sends), newest state of each message."""
    ids = {c.result["message_id"] for c in tg.sent if c.params.get("reply_markup") and isinstance(c.result, dict)}
    return [m for i in sorted(ids) if (m := tg.message(ALICE, i)) is not None]


def test_a_bot_killed_mid_answer_answers_that_message_after_its_restart(tmp_path, setup):
    config, llm, tg = setup
    first = Bot(config, tmp_path, "first", tg.token)
    try:
        tg.push_message(ALICE, text="tell me a long story")
        poll(lambda: [c for c in tg.calls_to("editMessageText") if "word5" in (c.text or "")], 60)
        # the library has confirmed the update by now: its next getUpdates passed a higher offset
        poll(lambda: not tg.pending_updates, 10)
        first.kill9()
    finally:
        first.stop()
    assert not finals(tg)
    placeholder = tg.calls_to("sendMessage")[0]
    assert placeholder.text == "…"

    second = Bot(config, tmp_path, "second", tg.token)
    try:
        answers = poll(lambda: finals(tg), 60)
        tg.push_message(ALICE, text="/help")  # the bot goes on with new updates
        poll(lambda: [c for c in tg.calls_to("sendMessage") if c.text == HELP], 30)
    finally:
        second.stop()
    answer = answers[0]
    assert answer["text"].startswith(WORDS), answer["text"][:200]
    assert answer["text"].endswith(RESTARTED_NOTE)  # the person is told it was asked again, not left to wonder
    # written where the cut-off answer was: one answer in the chat, not a stale part and a second one
    assert answer["message_id"] == placeholder.result["message_id"]
    assert len([c for c in tg.calls_to("sendMessage") if c.text == "…"]) == 1  # the killed answer's, no second
    assert len(finals(tg)) == 1
    # the model was asked again from the start (the first request died with the process); said in the docs
    assert len(llm.requests) == 2
    with sqlite3.connect(config.parent / "log.sqlite") as conn:
        links = conn.execute("SELECT COUNT(*) FROM message_requests").fetchone()[0]
        history = conn.execute("SELECT role, content FROM turns ORDER BY seq").fetchall()
        left = conn.execute("SELECT COUNT(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0]
    assert links == 1 and left == 0
    assert [r[0] for r in history] == ["user", "assistant"]
    assert history[0][1] == "tell me a long story"
    err = (tmp_path / "second.err").read_text()
    assert "taken before the last stop" in err and "Traceback" not in err, err[-3000:]


async def test_an_update_telegram_sends_again_is_not_answered_twice(tmp_path, tg, llm):
    """Taken, answered, and the process died before its next getUpdates confirmed it: Telegram sends it again."""
    config = bot_config(tmp_path, tg, llm)
    update = tg.push_message(ALICE, text="hello there")
    async with running_bot(config, tg):
        await eventually(final_message(tg, ALICE), 60)
    tg.resend(update)
    async with running_bot(config, tg):
        await eventually(lambda: not tg.pending_updates, 10)
        tg.push_message(ALICE, text="/help")  # handled after the one sent again
        await eventually(lambda: [t for t in replies_to(tg, ALICE) if t == HELP], 10)
    assert len(llm.requests) == 1
    assert len([c for c in tg.calls_to("sendMessage") if c.text == "…"]) == 1


async def test_update_ids_that_start_again_lower_are_heard_and_confirmed(tmp_path, tg, llm):
    """"If there are no new updates for at least a week, then identifier of the next update will be chosen randomly"
    (core.telegram.org/bots/api#update). The bot's offset stayed at the highest id it had seen: "in the future" to
    the Bot API, which reads from its queue's head then and confirms nothing (telegram-bot-api's do_get_updates), and
    one update at most for an offset asked again at once (process_get_updates_query). The first message after the
    week came back at every poll, in a tight loop, and no later message was ever heard."""
    config = bot_config(tmp_path, tg, llm)
    tg.renumber(900_000_000)
    async with running_bot(config, tg):
        await ask(tg, "hello there")
        tg.renumber(5_000_000)  # a week without updates
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: HELP in replies_to(tg, ALICE), 10)
        tg.push_message(ALICE, text="/help")
        await eventually(lambda: replies_to(tg, ALICE).count(HELP) == 2, 10)
        await eventually(lambda: not tg.pending_updates, 10)
        assert replies_to(tg, ALICE).count(HELP) == 2


async def test_a_bot_that_runs_for_days_drops_the_updates_it_answered_days_ago(tmp_path, tg, llm, monkeypatch):
    """Every update taken is kept in the inbox, its text too, until two days after it was answered — but those rows
    were deleted only when the bot started, so a bot that ran for months kept every message it ever took."""
    monkeypatch.setattr(telegram_inbox, "PRUNE_EVERY", 0.0, raising=False)  # no hour to wait between clean-ups
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        await ask(tg, "hello there")
        await eventually(lambda: _states(config) == ["done"], 10)
        with db(config) as conn:  # answered three days ago
            conn.execute("UPDATE telegram_inbox SET received = received - 3 * 86400")
        await ask(tg, "and now?")
        await eventually(lambda: _states(config) == ["done"], 10)


def _states(config) -> list[str]:
    with db(config) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM telegram_inbox ORDER BY update_id")]


async def test_a_second_bot_on_the_same_token_and_log_is_refused_at_start(tmp_path, tg, llm):
    """Two bots polling one token answer each other's 409 Conflict, and the second, at its start, took the
    first's unanswered messages for a dead process's and answered them too."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        runtime = open_runtime(config=config)
        second = TelegramBot(runtime, tg.token, poll_timeout=1)
        try:
            with pytest.raises(TelegramSetupError, match="another bot process"):
                await second.start()
        finally:
            await second.stop()
            await runtime.aclose()
        final = await ask(tg, "hello there")  # the first goes on
    assert final["text"].startswith(REPLY)


@pytest.mark.parametrize("html", [False, True], ids=["json", "nginx_page"])
async def test_an_outage_as_the_answer_ends_delays_the_final_message_but_loses_nothing(tmp_path, tg, html, caplog):
    """Telegram unreachable (its front answering 502, as in an outage) for a few seconds as the answer ended: the
    final message was tried three times in 1.5 s and given up — the chat kept a part of the answer, no buttons,
    while the log said answered. It is tried through the outage now. The front's own page (nginx's HTML, as the
    real one answers: php-telegram-bot/core#353) was logged whole, with a traceback, at ERROR, on every try."""
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="tell me a long story")
            await eventually(lambda: [c for c in tg.calls_to("editMessageText") if "word190" in (c.text or "")], 30)
            tg.set_default(Fault.status(502, html=html))
            await eventually(lambda: [c for c in tg.calls if not c.ok and c.params.get("reply_markup")], 30)
            await asyncio.sleep(3)  # the outage goes on past the old three tries
            tg.faults.clear()
            final = await eventually(final_message(tg, ALICE), 60)
    assert final["text"].startswith(WORDS)
    with db(config) as conn:
        assert conn.execute("SELECT COUNT(*) FROM message_requests").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0] == 0
    assert "<html>" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("fault", [Fault.status(429, retry_after=1), Fault.drop_midstream(after_chunks=1),
                                   Fault.hang_before_headers()], ids=["429_flood", "reset_mid_response", "silent"])
async def test_a_poll_lost_on_its_way_loses_no_message(tmp_path, llm, caplog, fault):
    """The getUpdates that carries the message is refused (flood control), cut off mid-response (a reset) or
    never answered (a connection gone silent, until the read timeout): nothing was confirmed, so the next poll
    brings the message again — answered once, no traceback."""
    with TelegramServer(fault_methods=["getUpdates"]) as tg:
        config = bot_config(tmp_path, tg, llm)
        tg.push_message(ALICE, text="hello there")
        tg.push(fault)
        async with running_bot(config, tg):
            await eventually(final_message(tg, ALICE), 60)
    assert len(llm.requests) == 1
    assert len([c for c in tg.calls_to("sendMessage") if c.text == "…"]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_answer_cut_short_by_a_stop_is_given_at_the_next_start(tmp_path, tg):
    """serve's SIGTERM mid-answer: the message says it stopped, and the next start answers it there."""
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm:
        config = bot_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="tell me a long story")
            await eventually(lambda: [c for c in tg.calls_to("editMessageText") if "word5" in (c.text or "")], 30)
        stopped = [c for c in tg.calls_to("editMessageText") if c.chat_id == ALICE][-1]
        assert stopped.text.endswith(STOPPED_NOTE)
        async with running_bot(config, tg):
            final = await eventually(final_message(tg, ALICE), 60)
    assert final["text"].startswith(WORDS) and final["message_id"] == stopped.params["message_id"]
    assert len([c for c in tg.calls_to("sendMessage") if c.text == "…"]) == 1
    with db(config) as conn:
        assert [r[0] for r in conn.execute("SELECT outcome FROM requests ORDER BY ts")] == ["cancelled", "ok"]
        assert [r[0] for r in conn.execute("SELECT role FROM turns ORDER BY seq")] == ["user", "assistant"]


async def test_an_inbox_that_cannot_be_written_still_answers(tmp_path, tg, llm, caplog):
    """The log file refuses the inbox's writes (disk full, locked by another process): the messages are answered
    as before the inbox (they would not survive a kill), one warning says so — not taken again and again."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        with db(config) as conn:
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON telegram_inbox "
                         "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        first = await ask(tg, "hello there")
        second = await ask(tg, "and again")
    assert first["text"].startswith(REPLY) and second["text"].startswith(REPLY)
    assert len(llm.requests) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "inbox" in warnings[0] and "disk is full" in warnings[0], warnings
