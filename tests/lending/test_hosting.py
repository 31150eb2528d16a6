"""serve's hosting: the bot inside serve survives a Telegram that cannot be reached at start (a machine
booting before its network is up) — the gateway is not held back, and the bot comes up when it can."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelyard.gateway import hosting as hosting_module
from modelyard.gateway.hosting import Hosting
from modelyard.router.lending import discover
from modelyard.runtime import open_runtime
from tests.fakes import OpenAIServer, TelegramServer
from tests.fakes.server import apoll

ALICE = 111


async def test_the_bot_in_serve_starts_once_telegram_is_reachable(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(hosting_module, "BOT_RETRY", (0.1, 0.3))
    tg = TelegramServer()
    tg.start()
    tg.stop()  # its port is known, nothing listens there yet: Telegram out of reach
    with OpenAIServer(reply_text="Hello from the model.") as llm:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "models": {"m": {"provider": "openai", "endpoint": f"{llm.url}/v1", "max_concurrent": 2}},
            "agents": {"chat": {"primary": "m"}},
            "log": {"path": str(tmp_path / "log.db")},
            "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE], "edit_interval": 0.05}}))
        runtime = open_runtime(config)
        lines: list[str] = []
        try:
            async with Hosting(runtime, "http://127.0.0.1:1", telegram_token=tg.token,
                               announce_line=lines.append) as hosted:
                entry = discover(config).entry
                assert entry is not None and entry.telegram and entry.socket == str(hosted.lender.path)
                await apoll(lambda: hosted.bot_state.startswith("retrying"), 10)
                tg.start()
                try:
                    await apoll(lambda: hosted.bot_state == "running", 15)
                    tg.push_message(ALICE, ALICE, "hello")
                    await apoll(lambda: any(c.params.get("reply_markup") for c in tg.sent), 15)
                finally:
                    assert hosted.status()["telegram"] == "running"
            assert discover(config).entry is None, "a clean stop withdraws the announcement"
        finally:
            tg.stop()
            await runtime.aclose()
    assert any("running in this process" in line for line in lines), lines


async def test_the_bot_in_serve_says_why_it_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Another bot process polls with the same token and log: serve's warning and /healthz said only
    "TelegramSetupError" — the reason (and what to do) stayed in the exception."""
    from modelyard.frontends.telegram import TelegramBot

    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(hosting_module, "BOT_RETRY", (0.1, 0.3))
    with TelegramServer() as tg, OpenAIServer(reply_text="Hello from the model.") as llm:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "models": {"m": {"provider": "openai", "endpoint": f"{llm.url}/v1", "max_concurrent": 2}},
            "agents": {"chat": {"primary": "m"}},
            "log": {"path": str(tmp_path / "log.db")},
            "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE]}}))
        runtime = open_runtime(config)
        other = TelegramBot(runtime, tg.token)
        assert other.inbox.claim()  # the other process's hold on this token and log
        try:
            async with Hosting(runtime, "http://127.0.0.1:1", telegram_token=tg.token,
                               announce_line=lambda _: None) as hosted:
                await apoll(lambda: hosted.bot_state.startswith("retrying"), 10)
                assert "another bot process" in hosted.bot_state
        finally:
            await other.stop()
            await runtime.aclose()
    warnings = [r.getMessage() for r in caplog.records if "could not start the bot" in r.getMessage()]
    assert warnings and "another bot process" in warnings[0], warnings
    assert tg.token not in " ".join(warnings)


async def test_the_bot_in_serve_with_a_token_telegram_refuses_says_which_and_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A token revoked in @BotFather (or pasted with a character missing) at serve's start: getMe answers 401
    (tdlib/telegram-bot-api#77, as the fake's revoke() does). serve logged "the bot token was rejected; the bot is
    off" — no variable named, nothing to do; `modelyard telegram` said both. The token is never in the log."""
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    with TelegramServer(token="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1") as tg, \
            OpenAIServer(reply_text="Hello from the model.") as llm:  # a token of @BotFather's shape
        token = tg.token
        tg.revoke()
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "models": {"m": {"provider": "openai", "endpoint": f"{llm.url}/v1", "max_concurrent": 2}},
            "agents": {"chat": {"primary": "m"}},
            "log": {"path": str(tmp_path / "log.db")},
            "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE], "token_env": "MY_BOT_TOKEN"}}))
        runtime = open_runtime(config)
        try:
            async with Hosting(runtime, "http://127.0.0.1:1", telegram_token=token,
                               announce_line=lambda _: None) as hosted:
                await apoll(lambda: hosted.bot_state.startswith("stopped"), 15)
        finally:
            await runtime.aclose()
    said = " ".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("telegram: Telegram refused"))
    bot_id = token.split(":")[0]
    assert (f"Telegram refused the bot token in MY_BOT_TOKEN (bot {bot_id}; the token is not shown): revoked in "
            "@BotFather, or copied with a character missing — copy it again from @BotFather, then restart "
            "serve") in said
    assert token.split(":")[1] not in said
