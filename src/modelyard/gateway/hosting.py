"""What ``serve`` runs besides the HTTP API, so one process (one service) is the machine's daemon.

- The **slot lender**: a private unix socket through which ``ask``, ``chat`` and ``telegram`` on
  this machine borrow serve's slots and breakers (:mod:`modelyard.router.lending`), announced in
  the data dir for front-ends of the same config to find.
- The **Telegram bot**, on serve's own runtime (one pool, one log) — so ``install-service``
  installs one service that runs it all. A bot that cannot reach Telegram (no network yet at boot)
  is retried in the background; the gateway serves meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelyardError
from modelyard.router.lending.lender import Lender
from modelyard.router.lending.registry import ServeEntry, announce, discover, socket_path, withdraw
from modelyard.runtime import Runtime

if TYPE_CHECKING:
    from modelyard.frontends.telegram import TelegramBot
    from modelyard.router.shared import RedisLink

log = logging.getLogger("modelyard.gateway")

#: seconds between attempts to start the bot, doubling up to the last
BOT_RETRY = (2.0, 60.0)
#: where the bot's warnings come from: the Telegram library and our front-end
BOT_LOGGERS = ("telegram", "modelyard.frontends.telegram")


class Hosting:
    """``async with Hosting(...)`` around the server's life: lender and bot up, then down."""

    def __init__(self, runtime: Runtime, url: str, *, telegram_token: str | None = None,
                 announce_line: Callable[[str], None] = print):
        self.runtime = runtime
        self.url = url
        self.token = telegram_token
        self.say = announce_line
        self.lender: Lender | None = None
        self.bot: TelegramBot | None = None
        self.bot_state = "off" if telegram_token is None else "starting"
        self._bot_task: asyncio.Task[None] | None = None
        self._state_task: asyncio.Task[None] | None = None
        self._config = runtime.config_path
        self._log_handler = logging.StreamHandler()
        self._log_handler.setLevel(logging.WARNING)

    async def __aenter__(self) -> Hosting:
        await self._lend()
        if self.runtime.pool.serve is not None:  # borrowing from another serve: connect now, not at the first request
            await self.runtime.pool.peek()
        if self.token is not None:
            self._bot_task = asyncio.create_task(self._run_bot(self.token), name="modelyard-telegram")
        if self.runtime.pool.link is not None:
            self._state_task = asyncio.create_task(self._say_state(), name="modelyard-state-said")
        return self

    async def _say_state(self) -> None:
        """Say once whether this process reached the shared state (it said only "connecting" at start, and
        nothing after: a host pointed at the wrong Redis, or one that was down, looked like the others)."""
        link = self.runtime.pool.link
        assert link is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 4 * link.settings.timeout + 1
        while link.up and link.view_at is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self.say(f"shared state: {state_line(link)}")

    async def __aexit__(self, *exc: object) -> None:
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task
        if self._bot_task is not None:
            self._bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bot_task
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.stop()
        for name in BOT_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_handler)
        if self.lender is not None:
            withdraw(self._config, os.getpid())
            await self.lender.aclose()

    async def _lend(self) -> None:
        other = discover(self._config)
        if other.entry is not None:
            self.say(f"`modelyard serve` pid {other.entry.pid} already serves this config: this gateway borrows its "
                     "limits, as front-ends do (if that serve stops, this one keeps its own until restarted)")
            return
        lender: Lender | None = None
        try:
            path = socket_path(self._config)
            lender = Lender(self.runtime.pool.states, path)
            await lender.start()
            announce(self._config, ServeEntry(os.getpid(), str(Path(self._config).resolve()), str(path), self.url,
                                              telegram=self.token is not None))
        except OSError as exc:  # a read-only data dir must not stop the gateway
            if lender is not None:
                await lender.aclose()
            self.say(f"warning: cannot lend slots to front-ends ({exc}): ask/chat/telegram keep their own limits")
            return
        self.lender = lender
        self.say(f"front-ends on this machine (ask, chat, telegram) share these limits through {path}")

    async def _run_bot(self, token: str) -> None:
        from telegram.error import InvalidToken

        from modelyard.frontends.telegram import TelegramBot, TokenFilter, nobody_allowed, token_refused

        # uvicorn configures only its own loggers: the bot's warnings (its library's and ours) get a handler
        # here that scrubs the token, as `modelyard telegram` does for its root handler
        self._log_handler.addFilter(TokenFilter(token))
        for name in BOT_LOGGERS:
            logging.getLogger(name).addHandler(self._log_handler)

        pause = BOT_RETRY[0]
        while True:
            bot = TelegramBot(self.runtime, token)
            try:
                await bot.start()
            except InvalidToken:
                self.bot_state = "stopped: Telegram rejected the token"
                # which variable, and what to do: it said "the bot token was rejected" and nothing to change
                log.error("telegram: %s, then restart serve; the bot is off (the gateway keeps serving)",
                          token_refused(self.runtime.config.telegram.token_env, token))
                await _quietly(bot.stop())
                return
            except Exception as exc:  # no network yet at boot, Telegram down, another bot polling: try again later
                # our own refusals say why in words that hold no secret; a library's error is named by its type only
                # (an HTTP error's text can quote the request URL, and Telegram's URLs hold the token)
                why = str(exc) if isinstance(exc, ModelyardError) else type(exc).__name__
                self.bot_state = f"retrying: {why}"
                log.warning("telegram: could not start the bot (%s); retrying in %.0fs", why, pause)
                await _quietly(bot.stop())
                await asyncio.sleep(pause)
                pause = min(pause * 2, BOT_RETRY[1])
                continue
            self.bot, self.bot_state = bot, "running"
            self.say(f"telegram bot @{bot.app.bot.username} running in this process")
            if (nobody := nobody_allowed(self.runtime.config, "restart serve")) is not None:
                self.say(f"warning: {nobody}")  # said by `modelyard telegram`; serve started the bot in silence
            return

    def status(self) -> dict[str, Any]:
        """For /healthz: who borrows the limits, and the bot."""
        lending: dict[str, Any] = {"socket": None, "borrowers": []}
        if self.lender is not None:
            lending = {"socket": str(self.lender.path), "borrowers": self.lender.borrowers()}
        bot = self.bot.health() if self.bot is not None else None
        state = self.bot_state
        if bot is not None and bot["polling"] == "stopped":  # the token revoked while it ran: it takes nothing now
            state = "stopped: Telegram rejected the token"
        return {"lending": lending, "telegram": state, "telegram_bot": bot}


def state_line(link: RedisLink) -> str:
    """Whether this process reached the shared state, for serve's start: where (database and prefix), how many other
    processes share it and whether they apply the same limits — or that it could not, and what that costs."""
    where = f"{link.settings.shown_url} prefix '{link.prefix}'"
    if link.up and link.view_at is not None:
        others = max(link.instances - 1, 0)
        status = link.status()
        agree = "same limits" if not status.disagreements else f"but: {'; '.join(status.disagreements)}"
        apart = f"; counted apart: {'; '.join(status.splits)}" if status.splits else ""
        return f"connected to {where} ({others} other instance(s), {agree}){apart}"
    if link.up:
        return f"still connecting to {where} (no answer yet; /healthz state says when it has one)"
    if link.settings.on_outage.value == "fail":
        costs = "on_outage=fail: no model gets a slot until it answers"
    else:
        costs = ("on_outage=share, but this process never counted the processes that share it: no model gets a slot "
                 "until it answers")
    return f"cannot reach {where} ({link.down_reason}); {costs} (tried again every ≤ 0.5 s; /healthz: state)"


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(Exception):
        await coro
