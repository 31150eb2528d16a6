"""The ``modelyard`` command. Each module holds a few related commands; this file only wires them."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from inspect import cleandoc
from pathlib import Path
from typing import Annotated

import typer

from modelyard import __version__
from modelyard.cli import agents_cmds, ask, bench_cmd, inspect, ops_cmds, replay_cmd, report_cmd, serve_cmd, setup
from modelyard.cli.common import CONFIG_HELP, command_scope, err
from modelyard.cli.help_labels import install as readable_help_labels
from modelyard.cli.telegram_cmd import telegram as telegram_command
from modelyard.ledger.store import LogUnavailable

readable_help_labels()

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Route agent requests across local and cloud models, with fallbacks and an honest log.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP, show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", is_eager=True,
                                          callback=_version)] = False,
) -> None:
    """Route agent requests across local and cloud models, with fallbacks and an honest log."""
    ctx.obj = {"config": config}


app.command()(ask.ask)
app.command()(ask.chat)
app.command()(inspect.models)
app.command()(inspect.log)
app.command()(inspect.stats)
app.command()(inspect.rate)
app.command()(setup.init)
app.command("fetch-model")(setup.fetch_model)
app.command()(agents_cmds.route)
app.command("eval-routing")(agents_cmds.eval_routing)
app.add_typer(agents_cmds.routing_app, name="routing")
app.command()(serve_cmd.serve)
app.command("telegram")(telegram_command)
app.command()(ops_cmds.probe)
app.command()(ops_cmds.check)
app.command()(ops_cmds.plan)
app.command()(ops_cmds.warmup)
app.command("install-service")(ops_cmds.install_service)
app.command()(report_cmd.report)
app.command()(bench_cmd.bench)
app.command()(replay_cmd.replay)


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """The command list shows each command's first paragraph with its docstring's line breaks kept (typer's
    rich mode): lines broken mid-sentence at the source's width. Joined here, rich wraps them to the terminal."""
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if info.short_help is None and doc:
            info.short_help = " ".join(cleandoc(doc).split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _one_line_summaries(group.typer_instance)


_one_line_summaries(app)


def _says_interrupted(callback: Callable[..., object]) -> Callable[..., object]:
    """A Ctrl-C that reaches typer from a command (``log`` or ``report`` waiting on PostgreSQL, ``models`` on its
    connects, ``replay`` simulating) became typer's silent exit 130; the commands that handle signals themselves
    (``cli.common.run``) said ``interrupted``. Said by every command now."""
    @functools.wraps(callback)
    def said(*args: object, **kwargs: object) -> object:
        try:
            with command_scope():
                return callback(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False, markup=False)
            raise typer.Exit(130) from None

    return said


def _interrupts_said(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _says_interrupted(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _interrupts_said(group.typer_instance)


_interrupts_said(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # while typer builds the commands (an install from before modelyard.console)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except LogUnavailable as exc:  # the log failed mid-command (a lock held past its bound): said, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a file a command was told to write that the system refuses (`report --chart
        # /read-only/x.png`, `bench --init` in a missing directory, a full disk): said, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) and exc.filename and os.path.isfile(exc.filename):
            why = "a file, where a directory was needed"  # os.makedirs on a path through a file said 'File exists'
        print(f"error: {where}{why}", file=sys.stderr)
        sys.exit(1)
