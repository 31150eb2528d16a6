"""``modelyard ask`` and ``modelyard chat``: talk to an agent, see the route each answer took.

Both are the terminal's I/O around the one turn pipeline (frontends/session.py), the same one
Telegram uses: without ``--agent`` (or with ``--agent auto`` / ``--agent orchestrator``) the
orchestrator picks the agent, and hand-offs follow the config in both. The answer streams as it
is written; a hand-off whose result replaces it is printed below a rule; then one route line per
request (truncation, fallbacks, a hand-off result that was not used, all shown there).
Ctrl-C / SIGTERM stop the model mid-answer: the partial answer stays on screen and in the log,
its route line is printed, and the exit status is 130 / 143 (cli/common.run) — except a Ctrl-C in ``chat``'s
answer, which stops only that answer: chat goes on at its prompt.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shlex
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelyard.agents.encoder import foreign_message, multilingual_loaded
from modelyard.agents.topology import HandoffPurpose, orchestrator_name
from modelyard.agents.turn import TurnResult
from modelyard.cli import ollama_host
from modelyard.cli.common import (
    ConfigOption,
    LocalOption,
    argument_text,
    console,
    err,
    fail,
    readable,
    run,
    runtime_or_exit,
)
from modelyard.cli.render import route_line
from modelyard.cli.route_notes import setup_notes
from modelyard.cli.which_config import embedded_default_note, unread_here_note
from modelyard.config.direct import DIRECT
from modelyard.config.names import did_you_mean, not_an_agent
from modelyard.frontends import chat_claim
from modelyard.frontends import session as session_module
from modelyard.frontends.history import CHAT_HISTORY_TOKENS, ConversationStore
from modelyard.frontends.reask import Switch
from modelyard.frontends.session import Reply, Session, Status, answer
from modelyard.router import RequestRecord
from modelyard.runtime import Runtime
from modelyard.types import Message

AUTO = "auto"
AgentOption = Annotated[str | None, typer.Option(
    "--agent", "-a", help="Agent to ask; 'auto' (the default) lets the orchestrator pick; model:NAME asks one "
                          "configured model alone")]


def _agent_or_exit(runtime: Runtime, agent: str | None) -> str | None:
    """The agent named on the command line; None (no option, or 'auto') = the orchestrator picks."""
    if agent is None or agent == AUTO:
        return None
    if agent not in runtime.config.agents:
        raise fail(_not_an_agent(runtime, agent))
    return agent


def _direct(agent: str | None) -> bool:
    """``--agent model:NAME``: one configured model alone, as the gateway serves it (a model's name alone said only
    which agents use it, and a fallback's none: there was no way to try one model from the command line)."""
    return agent is not None and agent.startswith(DIRECT)


def _not_an_agent(runtime: Runtime, name: str, switch: str = "--agent") -> str:
    """Why NAME is refused (see :func:`~modelyard.config.names.not_an_agent`, which Telegram's /agent says too)."""
    return not_an_agent(runtime.config, name, switch, AUTO)


#: what ``ask`` and ``chat`` wait for when the orchestrator picks the agent
ROUTED = "auto (orchestrator)"


def waiting_words(waiting_for: str, message: str = "") -> str:
    """The status line before the first token. A routed turn first loads the routing model (seconds, once per
    process: 6 s in `chat`'s first turn here at load 7) — it said only that a local model loads, and the route line
    after it showed the decision taking 1 ms, so the wait was put on the model that answered in 70 ms. The first
    ``message`` in another language also loads the multilingual routing encoder (~1 s of CPU, ~108 MiB) — in another
    language as the fast path reads it (``foreign_message``), not by the whole message's letters: an English request
    around a pasted German text is routed in English and loads nothing more."""
    if waiting_for == ROUTED:  # with its spinner: < 80 columns
        if foreign_message(message) and not multilingual_loaded():
            return "auto: choosing an agent (loading the multilingual model), then its answer…"
        return "auto: choosing an agent, then its answer (models load on first use)…"
    return f"{waiting_for}: waiting for the first token (a local model loads on its first use)…"


class TerminalText:
    """``on_text`` for a terminal: prints what the accumulated text adds; a text that does not continue
    what is shown (a hand-off's revision replacing the answer) is printed whole below a rule."""

    def __init__(self, show: bool = True, waiting_for: str | None = None, message: str = ""):
        self.show = show
        self.shown = ""
        # until the first token, a terminal says what it waits for: a local model's first use loads it
        # (seconds: 8 s here on a busy machine), and a silent prompt looked hung
        self._status = (err.status(waiting_words(waiting_for, message)) if show and waiting_for and err.is_terminal
                        else None)
        if self._status is not None:
            self._status.start()

    def _settled(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    async def __call__(self, text: str) -> None:
        self._settled()
        if not self.show:
            return
        if text.startswith(self.shown):
            console.out(text[len(self.shown):], end="", highlight=False)
        else:
            console.out("")
            console.print("[dim]── revised ──[/]", highlight=False)
            console.out(text, end="", highlight=False)
        self.shown = text
        console.file.flush()

    def end(self, final: str | None = None) -> None:
        """Close the answer's line; print ``final`` if the stream never showed it (a refusal, a tool loop)."""
        self._settled()
        if not self.show:
            return
        if final and final.strip() != self.shown.strip():
            if self.shown:
                console.out("")
                console.print("[dim]── revised ──[/]", highlight=False)
            console.out(final, end="", highlight=False)
            self.shown = final
        if self.shown:
            console.out("")
        console.file.flush()


def _handoffs(result: TurnResult | None) -> list[str]:
    """The hand-off verdicts of a turn ("utility (revise) → qwen: used" / "…: not used, why; kept …")."""
    purposes = tuple(f"({p})" for p in HandoffPurpose)
    return [s for s in result.route if any(p in s for p in purposes)] if result is not None else []


def _route_lines(records: list[RequestRecord], result: TurnResult | None) -> list[str]:
    """The orchestrator's decision, one route line per request, then each hand-off's verdict."""
    lines = [result.route[0]] if result is not None and result.decision is not None and result.route else []
    return lines + [route_line(r) for r in records] + _handoffs(result)


def _print_routes(records: list[RequestRecord], result: TurnResult | None) -> None:
    for line in _route_lines(records, result):
        err.print(f"[dim]{escape(line)}[/]", highlight=False)
    for note in setup_notes(records):  # a key refused, a model missing: said once, not only as a reason's word
        err.print(note, style="yellow", highlight=False, markup=False)


def _terminal_says_it() -> None:
    """The turn's warnings ('turn: no model could answer (request …)') are for a bot's log; a terminal prints
    the reply itself, and Python's last-resort handler printed them a second time, bare, above the error."""
    logging.getLogger(session_module.__name__).setLevel(logging.ERROR)


def _unaddressed(runtime: Runtime) -> str:
    """Who takes a turn that names no agent: the orchestrator's pick, or — in a config without an orchestrator —
    the default agent (agents/turn.py). chat said "talking to auto (orchestrator)" and prompted "auto>" in a config
    that has none (newcomer5's walk)."""
    return ROUTED if orchestrator_name(runtime.config) is not None else runtime.config.first_agent


def _typed_at_a_terminal() -> bool:
    """Standard input is a person at a terminal (or absent), not text piped in."""
    return sys.stdin is None or sys.stdin.isatty()


def _borrowed(runtime: Runtime) -> str | None:
    """'limits: shared with `modelyard serve` (pid N)' once this process took its slots from serve (a quiet
    success left a newcomer guessing whether ask queued behind serve's requests or beside them)."""
    serve = runtime.pool.serve
    if serve is None or not serve.connection or serve.entry is None:
        return None
    return f"limits: shared with `modelyard serve` (pid {serve.entry.pid}); --local keeps them in this process"


def _answer_record(reply: Reply) -> RequestRecord | None:
    if reply.result is not None and reply.result.record is not None:
        return reply.result.record
    return reply.records[-1] if reply.records else None


def _record_json(record: RequestRecord) -> dict[str, Any]:
    return {k: v for k, v in asdict(record).items() if k not in ("prompt", "response", "thinking")}


def _json_out(reply: Reply) -> dict[str, Any]:
    record = _answer_record(reply)
    result = reply.result
    return {
        "id": record.id if record else None,
        "agent": record.agent if record else None,
        "model": record.model if record else None,
        "outcome": record.outcome if record and reply.status is not Status.REFUSED else reply.status,
        "answer": reply.text if reply.status in (Status.ANSWERED, Status.INTERRUPTED) else "",
        "error": None if reply.answered else (reply.detail or reply.text),
        "route": _record_json(record) if record else None,
        "decision": asdict(result.decision) if result is not None and result.decision is not None else None,
        "steps": [_record_json(r) for r in reply.records],
        "handoffs": _handoffs(result),
    }


def _piped_prompt() -> str:
    """Standard input, read whole as bytes and decoded by :func:`~modelyard.cli.common.readable`."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes beneath (an embedding caller's)
        return sys.stdin.read()
    return readable(buffer.read(), sys.stdin.encoding or "utf-8", "standard input")


def ask(
    words: Annotated[list[str] | None, typer.Argument(
        metavar="PROMPT", show_default=False,
        help="The task or question (quoted, or as several words); '-', or none with input piped in, reads standard "
             "input")] = None,
    agent: AgentOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming")] = False,
    local: LocalOption = False,
) -> None:
    """Ask an agent (or let the orchestrator pick one); stream the answer, then the route it took."""
    prompt = argument_text(words or [], "the prompt")  # `ask what is 2+2` as `ask "what is 2+2"`
    _terminal_says_it()
    if not words:  # `git diff | modelyard ask`, as `ollama run` and `llm` read a piped prompt (was 'Missing argument')
        if _typed_at_a_terminal():
            raise fail('give the task or question: modelyard ask "…" (or pipe it in: … | modelyard ask)')
        prompt = "-"
    if prompt == "-":
        prompt = _piped_prompt()
        if not prompt.strip():
            raise fail('the prompt is empty: nothing came on standard input (or give it here: modelyard ask "…")')
    if not prompt.strip():
        raise fail("the prompt is empty")
    runtime = runtime_or_exit(config, borrow=not local, one_shot=True,  # a running serve's limits too
                              direct=_direct(agent))
    name = _agent_or_exit(runtime, agent)

    async def go() -> int:
        records: list[RequestRecord] = []
        text = TerminalText(show=not as_json, waiting_for=name or _unaddressed(runtime), message=prompt)
        try:
            # --json shows nothing until the end, so the answer is buffered: a model that breaks off mid-answer
            # falls back to the chain's next one (streamed, it could not: the request ended interrupted, exit 1)
            reply = await answer(runtime, [Message("user", prompt)], agent=name,
                                 on_text=None if as_json else text, records=records)
        except asyncio.CancelledError:  # Ctrl-C / SIGTERM: the model is stopped and its row logged by now
            text.end()
            if not as_json:
                _print_routes(records, None)
            raise
        finally:
            await runtime.aclose()
        if as_json:
            console.out(json.dumps(_json_out(reply), indent=2, default=str), highlight=False)
        else:
            text.end(reply.text if reply.answered else None)
            if not reply.answered:
                err.print(f"[bold red]error:[/] {escape(reply.detail or reply.text)}", highlight=False)
            _print_routes(reply.records, reply.result)
            if not reply.answered:
                tried = {a.model for r in reply.records for a in r.attempts}
                for line in ollama_host.notes(runtime.config, runtime.config_path, tried):
                    err.print(line.strip(), highlight=False, markup=False)
                if default := embedded_default_note(runtime.config_path):
                    err.print(default, highlight=False, markup=False)
                if unread := unread_here_note(runtime.config_path):
                    err.print(unread, highlight=False, markup=False)
            if shared := _borrowed(runtime):
                err.print(shared, style="dim", highlight=False, markup=False)
        return 0 if reply.answered else 1

    raise typer.Exit(run(go))


class LineReader:
    """Lines from standard input read *on* the event loop, so its Ctrl-C/SIGTERM handling (cli/common.run)
    works at the prompt as during an answer, and no thread is left blocked on the terminal at exit (one
    was: the interpreter aborted, unable to finalize stdin under it). Standard input without a file
    descriptor (a test runner's) is read the plain, blocking way."""

    def __init__(self) -> None:
        self._buffer = b""
        self._eof = False

    async def read(self, prompt: str) -> str:
        try:
            fd = sys.stdin.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            return console.input(prompt)
        console.print(prompt, end="")
        console.file.flush()
        while b"\n" not in self._buffer and not self._eof:
            await self._readable(fd)
            chunk = os.read(fd, 65536)
            self._buffer += chunk
            self._eof = not chunk
        if not self._buffer:
            raise EOFError
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(sys.stdin.encoding or "utf-8", errors="replace")

    @staticmethod
    async def _readable(fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            loop.add_reader(fd, wake)
        except (OSError, ValueError):  # a regular file (stdin redirected from one) is always readable
            return
        try:
            await ready
        finally:
            loop.remove_reader(fd)


#: what chat's prompt understands (printed for /help and for a command it does not know)
COMMANDS = "/agent NAME, /agent auto, /retry, /reset, /help, /quit"
_WORDS = ("/agent", "/retry", "/reset", "/help", "/quit")


async def _command(session: Session, runtime: Runtime, line: str) -> bool:
    """Handle a ``/`` command; False when the line is a message."""
    if line == "/reset":
        session.reset()
        console.print("history cleared")
        return True
    word = line.split(maxsplit=1)[0]
    if word != "/agent":
        if re.fullmatch(r"/[A-Za-z][\w-]*", word):  # '/help', '/agnet x': a command, not a path or a message
            near = did_you_mean(word, _WORDS) if word != "/help" else ""  # '/agnet' → '/agent'
            console.print(f"{'commands' if word == '/help' else f'unknown command {word}{near}; commands'}: "
                          f"{COMMANDS}", highlight=False, markup=False)
            return True
        return False
    wanted = line.removeprefix("/agent").strip()
    if not wanted:  # said "'' is a model (the provider's id of …)": the in-process model's id is empty
        console.print(f"talking to {session.agent or _unaddressed(runtime)}; /agent NAME switches (agents: "
                      f"{', '.join(runtime.config.agents)}, or {AUTO})", highlight=False, markup=False)
        return True
    if wanted not in runtime.config.agents and wanted != AUTO:
        console.print(_not_an_agent(runtime, wanted, "/agent"), style="red", highlight=False, markup=False)
        return True
    session.choose(None if wanted == AUTO else wanted)
    console.print(f"now talking to [cyan]{wanted if wanted != AUTO else _unaddressed(runtime)}[/]")
    if wanted != AUTO and await session.correct(wanted) is Switch.ASK_AGAIN:
        # a switch alone is no correction (reask.py): asking the routed question again is, and says so then
        err.print(f"[dim]if your last message should have gone to {wanted}, send it again: that teaches routing[/]")
    return True


def _other_chats(store: ConversationStore, key: str) -> str:
    """What ``chat`` did not resume: the newest conversation of another config sharing this log, and how to go on
    with it; empty when there is none."""
    others = [(c, n) for c in store.others("cli", key) if (n := len(store.load(c, CHAT_HISTORY_TOKENS)))]
    if not others:
        return ""
    (newest, count), rest = others[0], len(others) - 1
    more = f" (and {rest} more of other configs)" if rest else ""
    if newest.external_id == "default":  # kept before chats were kept per config: its config is not known
        return f"not resumed: {count} messages of a chat from before chats were kept per config{more}"
    other = chat_claim.config_of(newest.external_id)
    return (f"not resumed: {count} messages of a chat with another config ({other}){more}; "
            f"`modelyard chat --config {shlex.quote(other)}` goes on with it")


NewOption = Annotated[bool, typer.Option(
    "--new", help="start a new conversation (without it, chat resumes this config's latest one that no other running "
                  "chat is in)")]


def chat(agent: AgentOption = None, config: ConfigOption = None, local: LocalOption = False,
         new: NewOption = False) -> None:
    """Interactive conversation, resumed next time with the same config file (two chats at once each have their
    own). Without --agent the orchestrator picks an agent per turn; '/agent NAME' talks to one agent ('/agent auto'
    goes back), '/retry' sends again a message no model answered, '/reset' forgets, '/help' lists these, '/quit'
    ends."""
    _terminal_says_it()
    runtime = runtime_or_exit(config, borrow=not local, one_shot=True,  # a running serve's limits too
                              direct=_direct(agent))
    store = ConversationStore(runtime.log_path)  # history persists in the routing log database
    # one conversation per config file: configs sharing a log (the default one) have other agents, and config B's
    # chat resumed config A's conversation. Its path, not its agents: an edited config goes on with its chat. A chat
    # holds its conversation while it runs: a second chat of the config starts its own (they interleaved).
    key = str(runtime.config_path.resolve())
    claimed = chat_claim.claim(store, key, new=new)
    session = Session(runtime, store, chat_claim.FRONTEND, claimed.external_id, history_tokens=CHAT_HISTORY_TOKENS,
                      agent=_agent_or_exit(runtime, agent), remember_agent=False)

    routed = _unaddressed(runtime)
    #: the turn being answered: a Ctrl-C stops it and chat goes back to its prompt (it ended chat, as `ollama run`
    #: does not: its Ctrl-C stops the answer, and another at the prompt ends it)
    answering: list[asyncio.Future[Reply]] = []

    def stop_answer() -> bool:
        if not answering or answering[0].done():
            return False
        answering[0].cancel()
        return True

    async def go() -> None:
        unrouted = "" if session.agent or routed == ROUTED else " (this config has no orchestrator: the default agent)"
        console.print(f"[bold]modelyard chat[/] — talking to [cyan]{session.agent or routed}[/]{unrouted}. "
                      "/agent NAME to switch, /quit to leave.", highlight=False)
        if claimed.note:
            console.print(claimed.note, style="dim", highlight=False, markup=False)
        if earlier := session.history():
            console.print(f"[dim]resuming: {len(earlier)} earlier messages; /reset starts over[/]")
        if not_resumed := _other_chats(store, key):
            console.print(not_resumed, style="dim", highlight=False, markup=False)
        reader = LineReader()
        said_shared: str | None = None
        #: the last message no model answered: it is not kept in the history, and the prompt recalls no lines
        unanswered: str | None = None
        try:
            while True:
                try:
                    line = (await reader.read(f"[bold cyan]{session.agent or routed.split()[0]}>[/] ")).strip()
                except EOFError:  # Ctrl-D: the shell's prompt on a line of its own, not after 'chat> '
                    console.print()
                    break
                except asyncio.CancelledError:  # Ctrl-C at the prompt: 'interrupted' on a line of its own, not
                    console.print()             # after the prompt ("chat> ^Cinterrupted")
                    raise
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    break
                if line == "/retry":
                    if unanswered is None:
                        console.print("nothing to retry: the last message was answered", highlight=False)
                        continue
                    line = unanswered
                elif await _command(session, runtime, line):
                    continue
                text = TerminalText(waiting_for=session.agent or routed, message=line)
                answering[:] = [asyncio.ensure_future(session.turn(line, on_text=text))]
                try:
                    reply = await answering[0]
                except asyncio.CancelledError:  # Ctrl-C: the answer so far stays, with its route line
                    text.end()
                    _print_routes(session.records, None)
                    if (this := asyncio.current_task()) is not None and this.cancelling():  # SIGTERM: chat ends
                        raise
                    err.print("[dim]stopped; the chat goes on (Ctrl-C at the prompt, or /quit, ends it)[/]",
                              highlight=False)
                    continue
                finally:
                    answering.clear()
                for notice in reply.notices:
                    console.print(f"[yellow]{escape(notice)}[/]", highlight=False)
                text.end(reply.text if reply.answered else None)
                unanswered = None if reply.answered else line
                if not reply.answered:
                    err.print(f"[bold red]error:[/] {escape(reply.detail or reply.text)}", highlight=False)
                _print_routes(reply.records, reply.result)
                if not reply.answered:  # it was typed once: say that it need not be typed again
                    err.print("[dim]your message is kept: /retry sends it again[/]", highlight=False)
                if (shared := _borrowed(runtime)) and shared != said_shared:  # once, and again after a change
                    err.print(shared, style="dim", highlight=False, markup=False)
                    said_shared = shared
        finally:
            store.close()
            claimed.release()
            await runtime.aclose()

    run(go, on_ctrl_c=stop_answer)
