"""What every command shares: the --config option, loading, and turning errors into exits.

Exit status: 0 ok, 1 the request could not be served (chain exhausted, interrupted),
2 bad input (config, arguments) — so scripts can tell "fix your config" from "try later".
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from modelyard.config import Config
from modelyard.errors import ConfigError
from modelyard.ledger.migrator import NewerSchema
from modelyard.ledger.store import LogConnection, LogStore, LogUnavailable
from modelyard.runtime import Runtime, load, open_runtime

# Piped output (CI logs, `| less`) gets a wide canvas instead of rich's 80-column default.
console = Console(soft_wrap=True,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 180)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

CONFIG_HELP = "Config file (else $MODELYARD_CONFIG, the user config, the embedded default)"


def inherit_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """``modelyard --config X CMD`` and ``modelyard CMD --config X`` mean the same; given both ways,
    the command's own wins. The global one is kept by the app's callback in ``ctx.obj``."""
    if value is not None:
        return value
    root = ctx.find_root().obj
    return root.get("config") if isinstance(root, dict) else None


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=CONFIG_HELP, show_default=False, callback=inherit_config),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def load_or_exit(config: Path | None) -> tuple[Config, Path]:
    try:
        return load(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def log_or_exit(cfg: Config) -> LogConnection:
    """A connection to where the routing log is read (the SQLite file, or PostgreSQL with ``log.url``)."""
    try:
        return LogStore.of(cfg).connect()
    except LogUnavailable as exc:
        raise fail(str(exc), code=1) from None
    except NewerSchema as exc:
        raise fail(str(exc)) from None


LocalOption = Annotated[bool, typer.Option(
    "--local", help="Do not borrow the slots and breakers of a running `modelyard serve` "
                    "(keep them in this process; a configured Redis state still applies)")]


def note(message: str) -> None:
    """A line on stderr that is neither an error nor the answer (e.g. where the limits live)."""
    err.print(f"note: {message}", style="yellow", markup=False, highlight=False)


def runtime_or_exit(config: Path | None, *, borrow: bool = False) -> Runtime:
    """``borrow``: a front-end shares the limits of the running ``serve`` of its config (notes on stderr
    when it cannot and keeps its own)."""
    try:
        return open_runtime(config, borrow=borrow, notice=note if borrow else None)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(factory())
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
