"""What every command shares: the --config option, loading, and turning errors into exits.

Exit status: 0 ok, 1 the request could not be served (chain exhausted, interrupted),
2 bad input (config, arguments) — so scripts can tell "fix your config" from "try later";
130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM, the shell's convention (128 + signal).
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # imported where used (asyncio too): `modelyard --help` and a command's --help need none of them
    import sqlite3

    from modelyard.cli.log_fallback import LogOrLocal
    from modelyard.config import Config
    from modelyard.errors import ConfigError
    from modelyard.ledger.store import LogConnection
    from modelyard.runtime import Runtime

#: NO_COLOR set (non-empty, no-color.org): no styling at all. rich's own NO_COLOR drops the colours and keeps bold,
#: dim and strike (`error:` came in bold on a terminal); GNU libtextstyle reads it as "colors and other text styling"
_STYLES: Literal["auto"] | None = None if os.environ.get("NO_COLOR") else "auto"
# Piped output (CI logs, `| less`) gets a wide canvas instead of rich's 80-column default.
console = Console(soft_wrap=True,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 180,
                  color_system=_STYLES)
err = Console(stderr=True, soft_wrap=True, color_system=_STYLES)
T = TypeVar("T")
C = TypeVar("C")

CONFIG_HELP = "Config file (else $MODELYARD_CONFIG, the user config, the embedded default)"


def global_config(ctx: typer.Context) -> Path | None:
    """The ``--config`` given before the command (kept by the app's callback in ``ctx.obj``)."""
    root = ctx.find_root().obj
    return root.get("config") if isinstance(root, dict) else None


def inherit_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """``modelyard --config X CMD`` and ``modelyard CMD --config X`` mean the same; given both ways, the
    command's own wins — and two different files are said, since one of them is being ignored."""
    before = global_config(ctx)
    if value is None:
        return before
    if before is not None and before != value and not ctx.resilient_parsing:
        err.print(f"note: two configs given — {before} before the command, {value} after it: using {value}",
                  highlight=False, markup=False)
    return value


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=CONFIG_HELP, show_default=False, callback=inherit_config),
]


def readable(raw: bytes, encoding: str, what: str) -> str:
    """``raw`` as text; bytes that are not text in ``encoding`` (a Latin-1 file piped in, `git diff` of one, a word
    typed on a Latin-1 terminal) are replaced by '�' and said. They raised UnicodeDecodeError from standard input (a
    traceback), or reached the model, the fast path's tokenizer and the log as lone surrogates from the command line
    (the log's write failed; `route` ended in a traceback)."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        text = raw.decode(encoding, errors="replace")
        bad = text.count("\ufffd") - raw.decode(encoding, errors="ignore").count("\ufffd")
        name = codecs.lookup(encoding).name.upper()
        err.print(f"note: {what} is not {name} text: {bad} byte(s) of it are not (the first, 0x{raw[exc.start]:02x}, "
                  f"at byte {exc.start}) and were sent as '\ufffd'; to send them as written, convert the text first "
                  f"(iconv -f ITS-ENCODING -t {name} FILE | modelyard ask)", highlight=False, markup=False)
        return text


def argument_text(words: list[str], what: str) -> str:
    """Command-line words as one text, by :func:`readable`: Python hands bytes that are not text in the
    file-system encoding over as lone surrogates (PEP 383)."""
    encoding = sys.getfilesystemencoding()
    return readable(" ".join(words).encode(encoding, "surrogateescape"), encoding, what)


def fail(message: str, code: int = 2) -> typer.Exit:
    # the message is text, never markup: 'e.g. [a, b]' or a config's '[utility]' would vanish as a style tag
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def config_said(exc: ConfigError) -> str:
    """A config error as a command says it: a config file that is not there (a name typed before `init` was run
    there, or the wrong directory) says how one gets written, not only 'file not found'."""
    if (exc.line is None and exc.detail.startswith("file not found") and exc.path
            and "beside it" not in exc.detail):  # a file of another name beside it: that, not a new one
        return f"{exc} (`modelyard init {exc.path}` writes a starter config there)"
    if exc.path is None and exc.line is None:  # `MODELYARD_STATE: …` names its source: '<config>: ' named none
        return f"{exc.key}: {exc.detail}" if exc.key else exc.detail
    return str(exc)


def load_or_exit(config: Path | None) -> tuple[Config, Path]:
    from modelyard.errors import ConfigError
    from modelyard.runtime import load

    try:
        return load(config)
    except ConfigError as exc:
        raise fail(config_said(exc)) from None


def known_models_or_exit(cfg: Config, names: list[str]) -> None:
    """Models named on the command line (``probe``, ``warmup``, ``bench --models``) that the config has: one it
    lacks is refused with the configured ones, the nearest name, or the entry whose provider id it is (`probe
    qwen3.5:latest` for the entry `qwen3.5`) — warmup said only "unknown model(s): NAME"."""
    from modelyard.config.names import did_you_mean, entry_of_provider_id

    unknown = [n for n in names if n not in cfg.models]
    if not unknown:
        return
    hints = []
    ids = {n: m.model for n, m in cfg.models.items()}
    for name in unknown:
        entry = entry_of_provider_id(name, ids)
        if entry:
            hints.append(f"'{name}' is the provider's id of '{entry}': name the entry")
        elif near := did_you_mean(name, cfg.models).strip(" ()"):
            hints.append(f"{name}: {near}" if len(unknown) > 1 else near)
    said = "; ".join(hints)
    raise fail(f"unknown model(s): {', '.join(unknown)} (configured: {', '.join(cfg.models)})"
               + (f" — {said}" if said else ""))


#: the log connections the running command opened through log_or_exit / local_log_or_exit (see command_scope)
_opened: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("modelyard_cli_opened", default=None)


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Close the log connections a command opened when it ends. ``models``, ``log``, ``stats`` and ``report`` left
    theirs open: nothing when the process exits next, but run in-process (tests, a host that embeds the CLI) each
    kept a PostgreSQL session until the collector came, with a ResourceWarning wherever that was."""
    token = _opened.set([])
    try:
        yield
    finally:
        opened = _opened.get() or []
        _opened.reset(token)
        for conn in reversed(opened):
            with contextlib.suppress(Exception):  # closing must not hide how the command ended
                conn.close()


def _closed_with_command(conn: C) -> C:
    opened = _opened.get()
    if opened is not None:
        opened.append(conn)
    return conn


def log_or_exit(cfg: Config) -> LogConnection:
    """A connection to where the routing log is read (the SQLite file, or PostgreSQL with ``log.url``)."""
    from modelyard.ledger.migrator import NewerSchema
    from modelyard.ledger.store import LogStore, LogUnavailable

    try:
        return _closed_with_command(LogStore.of(cfg).connect())
    except LogUnavailable as exc:
        raise fail(str(exc), code=1) from None
    except NewerSchema as exc:
        raise fail(str(exc)) from None


def local_log_or_exit(cfg: Config) -> sqlite3.Connection:
    """This host's SQLite file (probes, labels, bench runs, decisions); one that cannot be opened (not a
    database, ``log.path`` naming a directory) is said, not a traceback."""
    from modelyard.ledger.store import LogStore, LogUnavailable

    try:
        return _closed_with_command(LogStore.of(cfg).local())
    except LogUnavailable as exc:
        raise fail(str(exc), code=1) from None


def log_or_local(cfg: Config) -> LogOrLocal:
    """The routing log, or — a PostgreSQL log (``log.url``) that cannot be reached, or that stops answering
    mid-command — this host's own file, where rows wait to be forwarded; ``unread`` says why (said by the caller,
    which exits 1): ``models`` then still lists the models. It said only 'connection failed' and listed none, after
    a team's first ``log.url``; a connection cut mid-query still did."""
    from modelyard.cli.log_fallback import LogOrLocal
    from modelyard.ledger.migrator import NewerSchema
    from modelyard.ledger.store import LogStore, LogUnavailable

    store = LogStore.of(cfg)

    def local() -> LogConnection:
        return local_log_or_exit(cfg)

    try:
        shared = store.connect()
    except LogUnavailable as exc:
        if not cfg.log.url:  # the file alone, and it cannot be opened (its disk full, locked): the servers are listed
            return _closed_with_command(LogOrLocal(None, _blank_log, store.path, str(exc), blank=True))
        said = str(exc)
        # the server's own refusal (a role or database not made yet) says it runs and was reached: asking whether
        # it was sent the reader to the network
        if "FATAL:" not in said:
            said += " — is PostgreSQL running and reachable there (log.url)?"
        return _closed_with_command(LogOrLocal(None, local, store.path, said))
    except NewerSchema as exc:
        raise fail(str(exc)) from None
    return _closed_with_command(LogOrLocal(shared, local, store.path))


def _blank_log() -> LogConnection:
    """An empty log in memory, for a command that lists what it can without the routing log (``models``)."""
    from modelyard.ledger.db import connect

    return connect(":memory:")


def state_accepts_or_exit(cfg: Config, path: Path) -> None:
    """A long-running process (``serve``, ``telegram``) whose Redis refuses its password stops at start, naming
    where the URL is set and what to write. It started, gave no model a slot ("never reached it, so it cannot know
    its share") and answered every request 503 while /healthz said "unreachable". A Redis that cannot be reached
    is an outage, ridden out as before (``state.on_outage``)."""
    import asyncio

    from modelyard.errors import ConfigError
    from modelyard.router.pool import STATE_ENV, state_settings

    try:
        settings = state_settings(cfg)
    except ConfigError as exc:
        raise fail(config_said(exc)) from None
    if settings is None:
        return
    # redis is imported only when a state is configured (as everywhere else): a serve without one imported it at
    # start, and where redis-py cannot be imported (an install without it) that was a traceback
    from modelyard.router.shared.link import (
        CREDENTIALS_HINT,
        StoreFault,
        read_server_kind,
        refused,
        scripts_refused,
        server_named,
    )

    if why := asyncio.run(refused(settings)):  # INFO is refused too: a fork is named only where its reply names it
        message = (f"{server_named(None, why)} at {settings.shown_url} refused the credentials ({why}): "
                   f"{CREDENTIALS_HINT}")
    elif found := asyncio.run(scripts_refused(settings)):  # the password is right, no script runs there
        fault, why = found
        # the server spoken to, not "Redis" whatever it was (a Valkey's user told to fix "the Redis user")
        server = server_named(asyncio.run(read_server_kind(settings)), why)
        message = (f"{server} at {settings.shown_url} refused this user's scripts ({why}): {fault.said(server)}"
                   if fault is StoreFault.NOPERM else f"{settings.shown_url} is not a {server} modelyard can use "
                   f"({why}): {fault.said(server)}")
    else:
        return
    if os.environ.get(STATE_ENV, "").strip():
        raise fail(f"{STATE_ENV}: {message}")
    raise fail(str(ConfigError(message, path=str(path), line=_line_of_state(path), key="state")))


def _line_of_state(path: Path) -> int | None:
    from modelyard.config.loader import line_for, read_source, read_yaml
    from modelyard.errors import ConfigError

    try:
        _, lines = read_yaml(read_source(path)[0], str(path))
    except ConfigError:  # the embedded default, or a file gone since it was loaded
        return None
    return line_for(lines, ("state", "url"))


LocalOption = Annotated[bool, typer.Option(
    "--local", help="Do not borrow the slots and breakers of a running `modelyard serve` "
                    "(keep them in this process; a configured Redis state still applies)")]


def note(message: str) -> None:
    """A line on stderr that is neither an error nor the answer (e.g. where the limits live)."""
    err.print(f"note: {message}", style="yellow", markup=False, highlight=False)


def runtime_or_exit(config: Path | None, *, borrow: bool = False, one_shot: bool = False,
                    direct: bool = False) -> Runtime:
    """``borrow``: a front-end shares the limits of the running ``serve`` of its config (notes on stderr
    when it cannot and keeps its own); ``one_shot``: it sends one request at a time (ask, chat), see
    :func:`~modelyard.runtime.open_runtime`; ``direct``: every model is also the one-model agent ``model:NAME``, as
    at the gateway (config/direct.py)."""
    from modelyard.config.direct import derived_config
    from modelyard.errors import ConfigError
    from modelyard.ledger.store import LogUnavailable
    from modelyard.runtime import open_runtime

    try:
        if direct:
            cfg, path = load_or_exit(config)
            return open_runtime(path, config=derived_config(cfg), borrow=borrow, notice=note if borrow else None,
                                one_shot=one_shot)
        return open_runtime(config, borrow=borrow, notice=note if borrow else None, one_shot=one_shot)
    except ConfigError as exc:
        raise fail(config_said(exc)) from None
    except LogUnavailable as exc:  # e.g. the log's directory is read-only: said, not a traceback
        raise fail(str(exc), code=1) from None


#: the signals that stop a command: each cancels the command's task, as a client disconnect would
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(factory: Callable[[], Coroutine[Any, Any, T]], *, keeps_partial: bool = False,
        on_ctrl_c: Callable[[], bool] | None = None) -> T:
    """Run a command's coroutine; SIGINT and SIGTERM stop it cleanly, then exit 130 / 143.

    A signal *cancels* the command's task — it never raises at an arbitrary point — so every
    ``finally`` runs while the event loop is still open: a model generating in this process is
    stopped and its worker joined, the partial answer's request is logged with its tokens, the
    log is flushed. A second signal while that happens cancels again, which the cleanup absorbs
    (stopping llama.cpp takes at most one token). A command that handles the cancel (``chat``
    prints where it stopped) still exits with the signal's code — unless it ``keeps_partial``: a
    command that returns what finished when stopped (``bench``) gets that back, shows it, and exits
    with the code itself. ``on_ctrl_c``: asked first at a Ctrl-C; True when the command took it for itself (``chat``
    stops the answer being written and goes back to its prompt), so the command goes on.
    """
    import asyncio

    received: list[int] = []
    returned: list[bool] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            if signum == signal.SIGINT and on_ctrl_c is not None and on_ctrl_c():
                return
            received.append(signum)
            task.cancel()

        installed = []
        for signum in STOP_SIGNALS:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(signum, stop, signum)
                installed.append(signum)
        try:
            value = await factory()
            returned.append(True)
            return value
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    try:
        result = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        result = None
        received.append(signal.SIGINT)
    if received and not (keeps_partial and returned):
        err.print("interrupted" if received[0] == signal.SIGINT else "terminated")
        sys.exit(128 + received[0])
    return result  # type: ignore[return-value]
