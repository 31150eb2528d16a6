"""``modelyard serve``: the OpenAI-compatible gateway with metrics and the dashboard — the machine's
daemon: front-ends on this machine borrow its limits, and it runs the Telegram bot when configured."""

from __future__ import annotations

import contextlib
import os
import signal
from enum import StrEnum
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from modelyard.cli.common import ConfigOption, console, err, fail, load_or_exit, state_accepts_or_exit
from modelyard.config import Config
from modelyard.ledger.store import LogUnavailable


class LogLevel(StrEnum):
    """uvicorn's log levels (its ``LOG_LEVELS``): a name outside them became a KeyError traceback after the gateway
    had already said where it listens."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


def telegram_token_for(cfg: Config, wanted: bool | None) -> str | None:
    """The bot token when serve should run the bot: ``--telegram`` (a missing token is an error),
    or by default when the config has a ``telegram:`` section and its token is set."""
    from modelyard.frontends.telegram import TelegramSetupError, bot_token

    if wanted is False or (wanted is None and "telegram" not in cfg.model_fields_set):
        return None
    try:
        return bot_token(cfg)
    except TelegramSetupError as exc:
        if wanted:
            raise fail(str(exc)) from None
        console.print(f"telegram: the config has a telegram section but the bot stays off ({exc})",
                      highlight=False, markup=False)
        return None


#: the variables that send an http:// request to a proxy, as httpx (the OpenAI and Anthropic SDKs) and requests read
#: them: the scheme's own, then ALL_PROXY; lower case first, as urllib.request.getproxies_environment
_HTTP_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def loopback_proxied(env: dict[str, str], port: int) -> str | None:
    """A note when clients started from this environment would send the gateway's loopback URL to a proxy.

    httpx, which the OpenAI and Anthropic SDKs use, proxies 127.0.0.1 and localhost like any host unless NO_PROXY
    names them (httpx/_utils.py get_environment_proxies: NO_PROXY's words only; ``127.0.0.0/8`` is read as a domain
    suffix and matches nothing); so on a machine with a corporate HTTP_PROXY, ``OpenAI(base_url="http://127.0.0.1:8765/
    v1")`` said only "Connection error." (or the proxy's own 403) while ``serve`` ran — the same trap reported against
    other local servers (QubesOS/qubes-builder-archlinux#76, KarpelesLab/teamclaude#75). Variable names are said,
    never values (a proxy URL may carry a password)."""
    proxy = next((name for name in _HTTP_PROXY_VARIABLES if env.get(name, "").strip()), None)
    if proxy is None:
        return None
    bypass = {word.strip().lower() for name in ("no_proxy", "NO_PROXY") for word in env.get(name, "").split(",")}
    if "*" in bypass or "127.0.0.1" in bypass:  # the address serve prints, and the README's clients use
        return None
    return (f"note: {proxy} is set and NO_PROXY does not name 127.0.0.1: clients started from this "
            f"environment (the OpenAI and Anthropic SDKs, requests) send http://127.0.0.1:{port} to that proxy and "
            "fail ('Connection error.', or the proxy's own 403/502) — export NO_PROXY=127.0.0.1,localhost,::1 "
            "where they run")


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: gateway.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help=(
        "Port (default: gateway.port, 8765); 0 takes a free one, said in the start line"), min=0, max=65535)] = None,
    access_log: Annotated[bool, typer.Option(help="Log one line per HTTP request")] = True,
    log_level: Annotated[LogLevel, typer.Option(case_sensitive=False, metavar="LEVEL", help=(
        "How much the server logs: critical, error, warning, info, debug or trace"))] = LogLevel.INFO,
    keep_warm: Annotated[bool, typer.Option(help="Load local models at start and keep them loaded")] = True,
    telegram: Annotated[bool | None, typer.Option(
        "--telegram/--no-telegram", show_default="on when the config has a telegram section and its token is set",
        help="Run the Telegram bot in this process (one pool, one log)")] = None,
) -> None:
    """Serve agents and models over an OpenAI-compatible HTTP API, with /metrics and a dashboard.
    ask, chat and telegram on this machine share its limits; it runs the Telegram bot when configured."""
    from modelyard.config.bind import NotABindAddress, bind_host
    from modelyard.gateway.auth import InsecureBind
    from modelyard.gateway.server import NotOurAddress, PortTaken
    from modelyard.gateway.server import serve as run_server

    try:  # `--host localhost:8765` was refused as beyond loopback; `--host [::1]` failed in uvicorn after starting
        host = None if host is None else bind_host(host, host_key="--host ", port_key="--port ")
    except NotABindAddress as exc:
        raise fail(f"--host: {exc}") from None
    cfg, path = load_or_exit(config)
    state_accepts_or_exit(cfg, path)
    token = telegram_token_for(cfg, telegram)
    if note := loopback_proxied(dict(os.environ), port or cfg.gateway.port):
        _say(note)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the handler that
    # was there before it: make that an exit with the conventional status (143 / 130), not a traceback
    previous = signal.signal(signal.SIGTERM, _exit_terminated)
    try:
        run_server(cfg, path, host=host, port=port, access_log=access_log, log_level=log_level.value,
                   keep_warm=keep_warm, announce=_say,
                   telegram_token=token)
    except (InsecureBind, NotOurAddress) as exc:
        raise fail(str(exc)) from None
    except PortTaken as exc:  # the machine's state, not bad input: not done (1); systemd's on-failure restarts on it
        raise fail(str(exc), code=1) from None
    except LogUnavailable as exc:  # e.g. the log's directory is read-only: said, not a traceback
        raise fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        _said(err, "interrupted")  # as every command says it (it exited 130 silently)
        raise typer.Exit(128 + signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _said(where: Console, line: str) -> None:
    """A line of serve's, whose output may be gone (`serve | head`, a closed terminal or log pipe): rich answers a
    broken pipe with SystemExit(1) from inside the print — raised in the gateway's start-up it failed the start (exit
    3), ended serve (exit 1), or left one that SIGTERM no longer stopped. The gateway outlives its output instead."""
    with contextlib.suppress(SystemExit):  # rich has pointed the output at /dev/null: later lines are dropped
        where.print(line, highlight=False, markup=False)


def _say(line: str) -> None:
    _said(console, line)


def _exit_terminated(signum: int, frame: FrameType | None) -> None:
    _said(err, "terminated")
    raise typer.Exit(128 + signum)
