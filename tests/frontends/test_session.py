"""The one turn pipeline (frontends/session.py): a new front-end is its I/O only.

This test *is* such a front-end — ten lines of "read a message, show the reply" — and gets what
Telegram and ``modelyard chat`` get: history carried into the next turn, the orchestrator and
hand-offs, every failure as a message for the person (never stored as history), the routing rows
committed before the reply is shown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyard.frontends.history import ConversationStore
from modelyard.frontends.session import NO_MODEL, Session, Status
from modelyard.runtime import open_runtime
from tests.agents.conftest import agent_of, fake_config
from tests.fakes import Fault, OpenAIServer


class TinyFrontend:
    """The whole front-end: shows what streams and the final reply."""

    def __init__(self, session: Session):
        self.session = session
        self.screen: list[str] = []

    async def say(self, text: str) -> str:
        async def show(partial: str) -> None:
            self.screen.append(partial)

        reply = await self.session.turn(text, on_text=show)
        self.screen.append(reply.text)
        return reply.status


async def test_a_new_front_end_is_its_io_only(tmp_path: Path) -> None:
    with OpenAIServer(reply_text=lambda body: f"<{agent_of(body)}> {len(body['messages'])} messages") as fake:
        runtime = open_runtime(tmp_path / "config.yaml", config=fake_config(fake.url, tmp_path))
        store = ConversationStore(runtime.log_path)
        front = TinyFrontend(Session(runtime, store, "tiny", 42, history_tokens=2000))
        assert await front.say("my python script crashes with a TypeError, please fix it") == Status.ANSWERED
        assert front.screen[-1] == "<engineer> 2 messages"  # routed by the orchestrator: system + user
        assert await front.say("thanks, that works now") == Status.ANSWERED
        assert front.screen[-1] == "<chat> 4 messages"  # the first exchange came along as history
        fake.push(Fault.status(500))
        assert await front.say("hi again") == Status.NO_MODEL
        assert front.screen[-1] == NO_MODEL
        turns = store.turns(front.session.conversation)
        store.close()
        await runtime.aclose()
    assert [t.role for t in turns] == ["user", "assistant"] * 2  # the failed turn is not history
    conn = sqlite3.connect(runtime.log_path)
    ids = {r[0] for r in conn.execute("SELECT id FROM requests")}  # committed before each reply was shown
    conn.close()
    assert {t.request_id for t in turns if t.request_id} <= ids and len(ids) == 3


async def test_too_long_is_refused_before_any_model_runs(tmp_path: Path) -> None:
    with OpenAIServer(reply_text="never") as fake:
        runtime = open_runtime(tmp_path / "config.yaml", config=fake_config(fake.url, tmp_path))
        store = ConversationStore(runtime.log_path)
        session = Session(runtime, store, "tiny", 7, history_tokens=2000)
        started: list[list[str]] = []

        async def on_start(notices: list[str]) -> None:
            started.append(notices)

        reply = await session.turn("word " * 20_000, on_start=on_start)
        store.close()
        await runtime.aclose()
        assert fake.requests_to("/v1/chat/completions") == []
    assert reply.status is Status.REFUSED and "too long" in reply.text and not started
