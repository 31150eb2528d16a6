"""``modelyard telegram``: run the Telegram bot (long polling) until Ctrl-C or SIGTERM.

With a ``modelyard serve`` running for the same config, the bot borrows serve's slots and breakers
(one set of limits on the machine); if serve already runs the bot itself, a second one would only
fight it for Telegram's updates (409 Conflict), so this command refuses and says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from modelyard.cli.common import (
    ConfigOption,
    LocalOption,
    err,
    fail,
    load_or_exit,
    run,
    runtime_or_exit,
    state_accepts_or_exit,
)
from modelyard.paths import resolve_config_path
from modelyard.router.lending import discover


def telegram(config: ConfigOption = None, local: LocalOption = False) -> None:
    """Serve the Telegram bot: allowlisted users chat with the agents, answers stream, 👍/👎 rate them."""
    from telegram.error import TelegramError

    from modelyard.frontends.telegram import (
        TelegramBot,
        TelegramSetupError,
        bot_token,
        nobody_allowed,
        quiet_http_logs,
    )

    serving = discover(resolve_config_path(config)).entry
    if serving is not None and serving.telegram:
        raise fail(f"the bot already runs inside `modelyard serve` (pid {serving.pid}) for this config; "
                   "stop that serve, or start it with --no-telegram, to run the bot on its own")
    state_accepts_or_exit(*load_or_exit(config))
    runtime = runtime_or_exit(config, borrow=not local)
    try:
        token = bot_token(runtime.config)
    except TelegramSetupError as exc:
        runtime.log.close()
        raise fail(str(exc)) from None
    settings = runtime.config.telegram
    if (nobody := nobody_allowed(runtime.config, "start the bot again")) is not None:
        # where a newcomer finds the number to put there: the bot's own log line for the message it ignores
        err.print(f"[yellow]warning:[/] {nobody}", highlight=False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_logs(token, logging.getLogger().handlers)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        bot = TelegramBot(runtime, token)
        try:
            try:
                await bot.start()
            except TelegramError as exc:  # no network, a proxy, a revoked token: say which, not a traceback
                raise fail(_cannot_start(exc, settings.token_env, token), code=1) from None
            except TelegramSetupError as exc:  # another bot polls this token here
                raise fail(str(exc), code=1) from None
            # from here a signal lets the answers being written end (bot.stop); until here it cancels the start, as
            # `run` does: set before it, a Ctrl-C during the getMe retries (up to ~30 s without a network) was kept
            # for later — the start went on, and failed ('cannot reach Telegram', exit 1) or ran and stopped
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await runtime.pool.peek()  # connects to a running serve now, so the line below is true
            err.print(f"telegram bot @{bot.app.bot.username} running; routing log: {runtime.log_path}; "
                      f"limits: {runtime.pool.describe_state()}. Ctrl-C stops it.", highlight=False, markup=False)
            refused = asyncio.ensure_future(bot.refused.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([refused, stopping], return_when=asyncio.FIRST_COMPLETED)
            refused.cancel()
            stopping.cancel()
            if bot.refused.is_set():  # revoked while it ran: polling has ended (it ran on, taking nothing)
                raise fail(f"Telegram refuses the bot token in {settings.token_env} now (401 Unauthorized: revoked "
                           "in @BotFather, or the bot deleted); the bot takes no more messages — put the new token "
                           "there and start it again", code=1)
        finally:
            await bot.stop()
            await runtime.aclose()

    run(go)


def _cannot_start(exc: Exception, token_env: str, token: str) -> str:
    """Why the bot could not start, and what to check; a refused token by :func:`token_refused`, whose words never
    hold the token."""
    from telegram.error import InvalidToken

    from modelyard.frontends.telegram import token_refused

    if isinstance(exc, InvalidToken):
        return token_refused(token_env, token)
    said = str(exc).replace(token, "<token>") if token else str(exc)  # an error that quotes a URL quotes the token
    return (f"cannot reach Telegram ({type(exc).__name__}: {said}): check this machine's network, DNS or proxy "
            "(HTTPS_PROXY), then start the bot again")
