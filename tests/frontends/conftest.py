"""A Telegram bot wired to the fake Bot API and a fake OpenAI-compatible model, on loopback."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelyard.config import Config
from modelyard.frontends.telegram import TelegramBot
from modelyard.runtime import open_runtime
from tests.fakes import OpenAIServer, TelegramServer
from tests.fakes.server import apoll
from tests.helpers import make_config

T = TypeVar("T")
ALICE, BOB, MALLORY = 111, 222, 999
REPLY = "Sure. Here is a short answer that arrives word by word from the fake model server."


async def eventually(predicate: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll without blocking the event loop the bot runs on."""
    return await apoll(predicate, timeout)


@pytest.fixture
def tg() -> TelegramServer:
    with TelegramServer() as server:
        yield server


@pytest.fixture
def llm() -> OpenAIServer:
    with OpenAIServer(reply_text=REPLY, chunk_interval=0.01) as server:
        yield server


#: an answer of two messages: the second goes out with the buttons in the final render
LONG = " ".join(f"word{i}" for i in range(900))


@pytest.fixture
def long_llm() -> OpenAIServer:
    with OpenAIServer(reply_text=LONG, chunk_interval=0.0) as server:
        yield server


def with_buttons(params: dict[str, Any]) -> bool:
    """A Bot API call carrying the rating buttons: the final message of an answer."""
    return bool(params.get("reply_markup"))


def bot_config(tmp_path: Path, tg: TelegramServer, llm: OpenAIServer, **telegram: Any) -> Config:
    """The embedded default's shape (chat + specialists on one local model), backed by the fake server."""
    settings = {"base_url": tg.base_url, "allowed_users": [ALICE, BOB], "edit_interval": 0.05, **telegram}
    return make_config(
        {"local": {"provider": "openai", "model": "qwen", "endpoint": f"{llm.url}/v1", "context": 4096,
                   "max_concurrent": 1}},
        {"chat": {"description": "Talks with the user.", "primary": "local", "max_tokens": 256},
         "engineer": {"description": "Writes and fixes code.", "primary": "local", "max_tokens": 384}},
        default_agent="chat",
        log={"path": str(tmp_path / "log.sqlite")},
        telegram=settings,
    )


@asynccontextmanager
async def running_bot(config: Config, tg: TelegramServer) -> AsyncIterator[TelegramBot]:
    runtime = open_runtime(config=config)
    bot = TelegramBot(runtime, tg.token, poll_timeout=1)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        await runtime.aclose()


def final_message(tg: TelegramServer, chat_id: int) -> Callable[[], dict[str, Any] | None]:
    """Predicate: the newest message in the chat that carries the rating buttons."""
    def check() -> dict[str, Any] | None:
        for call in reversed(tg.sent):
            if call.chat_id == chat_id and call.params.get("reply_markup"):
                result = call.result
                return tg.message(chat_id, result["message_id"]) if isinstance(result, dict) else None
        return None
    return check


def replies_to(tg: TelegramServer, chat_id: int) -> list[str]:
    return [c.text or "" for c in tg.calls_to("sendMessage") if c.ok and c.chat_id == chat_id]


def db(config: Config) -> sqlite3.Connection:
    conn = sqlite3.connect(str(config.log.path))
    conn.row_factory = sqlite3.Row
    return conn
