"""``modelyard telegram``: run the Telegram bot (long polling) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from modelyard.cli.common import ConfigOption, err, fail, run, runtime_or_exit


def telegram(config: ConfigOption = None) -> None:
    """Serve the Telegram bot: allowlisted users chat with the agents, answers stream, 👍/👎 rate them."""
    from modelyard.frontends.telegram import TelegramBot, TelegramSetupError, bot_token, quiet_http_logs

    runtime = runtime_or_exit(config)
    try:
        token = bot_token(runtime.config)
    except TelegramSetupError as exc:
        runtime.log.close()
        raise fail(str(exc)) from None
    settings = runtime.config.telegram
    if not settings.allowed_users:
        err.print("[yellow]warning:[/] telegram.allowed_users is empty: the bot will answer nobody", highlight=False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_logs(token, logging.getLogger().handlers)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        bot = TelegramBot(runtime, token)
        try:
            await bot.start()
            err.print(f"telegram bot @{bot.app.bot.username} running; routing log: {runtime.log_path}. "
                      "Ctrl-C stops it.", highlight=False)
            await stop.wait()
        finally:
            await bot.stop()
            await runtime.aclose()

    run(go)
