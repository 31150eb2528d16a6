"""What a chat waits for while an answer is written, and what it does not.

The rule users expect: a chat's answers come in the order its messages were sent; other chats are answered
beside it; commands (/status, /stop, /help) are answered at once, even in the chat whose answer streams; and a
burst larger than the model's slots waits its turn instead of being turned away.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelyard.config import Config
from modelyard.frontends.session import NO_MODEL
from modelyard.frontends.telegram import CANCELLED_NOTE
from tests.fakes import OpenAIServer, TelegramServer
from tests.frontends.conftest import ALICE, BOB, db, eventually, final_message, replies_to, running_bot
from tests.helpers import make_config

WORDS = " ".join(f"word{i}" for i in range(200))  # 200 chunks, 0.05 s apart: a 10 s answer
SHORT = " ".join(f"word{i}" for i in range(60))  # a 3 s answer


def slow_config(tmp_path: Path, tg: TelegramServer, llm: OpenAIServer, **defaults: Any) -> Config:
    return make_config(
        {"local": {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1", "context": 4096,
                   "max_concurrent": 1}},
        {"chat": {"description": "Talks with the user.", "primary": "local", "max_tokens": 256}},
        default_agent="chat",
        log={"path": str(tmp_path / "log.sqlite")},
        telegram={"base_url": tg.base_url, "allowed_users": [ALICE, BOB], "edit_interval": 0.05, "agent": "chat"},
        defaults=defaults,
    )


def streaming(tg: TelegramServer, chat: int, word: str = "word5") -> Any:
    return lambda: [c for c in tg.calls_to("editMessageText") if c.chat_id == chat and word in (c.text or "")]


async def test_status_in_the_chat_whose_answer_streams_is_answered_at_once(tmp_path, tg):
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm:
        async with running_bot(slow_config(tmp_path, tg, llm), tg):
            tg.push_message(ALICE, text="tell me a long story")
            await eventually(streaming(tg, ALICE), 30)
            tg.push_message(ALICE, text="/status")
            status = await eventually(lambda: [t for t in replies_to(tg, ALICE) if "Models:" in t], 10)
            assert final_message(tg, ALICE)() is None  # the answer is still being written
            assert "Answers: 1 being written, 0 waiting for a model (up to 1 at once)" in status[0]


async def test_stop_ends_the_answer_being_written_and_those_waiting_behind_it(tmp_path, tg):
    """/stop used to be 'Unknown command' — and it queued behind nothing, but stopped nothing either."""
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm:
        config = slow_config(tmp_path, tg, llm)
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="tell me a long story")
            tg.push_message(ALICE, text="and then another one")
            await eventually(streaming(tg, ALICE), 30)
            tg.push_message(ALICE, text="/stop")
            said = await eventually(lambda: [t for t in replies_to(tg, ALICE) if t.startswith("Stopped")], 10)
            assert "1 message(s) waiting" in said[0]
            stopped = [c for c in tg.calls_to("editMessageText") if c.chat_id == ALICE][-1].text or ""
            assert stopped.startswith("word0 word1") and stopped.endswith(CANCELLED_NOTE) and "word199" not in stopped
            # the chat is not stuck: the next message is answered
            tg.push_message(ALICE, text="hello again")
            final = await eventually(final_message(tg, ALICE), 60)
        assert final["text"].startswith(WORDS)
        assert len(llm.requests) == 2  # the long story (stopped) and 'hello again'; the waiting one never ran
        with db(config) as conn:
            outcomes = [r[0] for r in conn.execute("SELECT outcome FROM requests ORDER BY ts")]
            left = conn.execute("SELECT COUNT(*) FROM telegram_inbox WHERE state != 'done'").fetchone()[0]
        assert outcomes == ["cancelled", "ok"] and left == 0


async def test_a_burst_past_the_model_slots_waits_its_turn_rather_than_being_turned_away(tmp_path, tg):
    """One local slot, a 3 s answer, timeouts.queue 1 s: the second chat's message waited in the model's queue
    and got 'no model could answer' after a second. It now waits in the bot (its placeholder on screen) and is
    answered when the first answer is done."""
    with OpenAIServer(reply_text=SHORT, chunk_interval=0.05) as llm:
        config = slow_config(tmp_path, tg, llm, timeouts={"queue": 1.0})
        async with running_bot(config, tg):
            tg.push_message(ALICE, text="tell me a long story")
            await eventually(streaming(tg, ALICE, "word1"), 30)
            tg.push_message(BOB, text="me too")
            await eventually(lambda: replies_to(tg, BOB), 10)  # the placeholder shows at once
            alice = await eventually(final_message(tg, ALICE), 60)
            bob = await eventually(final_message(tg, BOB), 60)
    assert alice["text"].startswith(SHORT)
    assert bob["text"].startswith(SHORT) and NO_MODEL not in bob["text"]
    with db(config) as conn:
        assert [r[0] for r in conn.execute("SELECT outcome FROM requests")] == ["ok", "ok"]


async def test_a_chat_with_hundreds_of_messages_waiting_holds_up_no_other_chat(tmp_path, tg):
    """Each message waiting for its chat's earlier answer held one of python-telegram-bot's 256 concurrent
    updates: 300 messages in one chat (a paste split by the client, a forwarded batch, a script) and every other
    chat's messages and commands waited for them — /status included."""
    with OpenAIServer(reply_text=WORDS, chunk_interval=0.05) as llm:
        async with running_bot(slow_config(tmp_path, tg, llm), tg):
            for i in range(300):
                tg.push_message(ALICE, text=f"message {i}")
            await eventually(streaming(tg, ALICE, "word1"), 30)
            await eventually(lambda: not tg.pending_updates, 10)  # all 300 taken
            asked = time.monotonic()
            tg.push_message(BOB, text="/status")
            await eventually(lambda: [t for t in replies_to(tg, BOB) if "Models:" in t], 10)
            assert time.monotonic() - asked < 10
            assert final_message(tg, ALICE)() is None  # still on the first of the 300
