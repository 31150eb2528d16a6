"""``modelyard ask`` and ``modelyard chat``: talk to an agent, see the route each answer took."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from modelyard.agents.errors import AgentError
from modelyard.agents.learning import correct_routing
from modelyard.agents.turn import TurnResult, handle_turn
from modelyard.cli.common import ConfigOption, LocalOption, console, err, fail, run, runtime_or_exit
from modelyard.cli.render import route_line
from modelyard.frontends.history import CHAT_HISTORY_TOKENS, ConversationStore
from modelyard.ledger.labels import LabelSource
from modelyard.router import ChainExhausted, RequestRecord, StreamInterrupted
from modelyard.runtime import Runtime
from modelyard.types import ChatRequest, Message

AgentOption = Annotated[str | None, typer.Option("--agent", "-a", help="Agent to ask (default: default_agent)")]


def _agent_or_exit(runtime: Runtime, agent: str | None) -> str:
    name = agent or runtime.config.first_agent
    if name not in runtime.config.agents:
        raise fail(f"unknown agent '{name}' (agents: {', '.join(runtime.config.agents)})")
    return name


async def _turn(runtime: Runtime, agent: str, messages: list[Message], *, show: bool) -> tuple[str, RequestRecord]:
    """Stream one answer to the terminal; return its text and record."""
    stream = runtime.router.stream(agent, ChatRequest(messages=messages))
    try:
        async for chunk in stream:
            if show and chunk.kind == "text":
                console.out(chunk.text, end="", highlight=False)
            elif show and chunk.kind == "tool_call" and chunk.tool_call:
                console.print(f"[dim]→ tool call {chunk.tool_call.name}({json.dumps(chunk.tool_call.arguments)})[/]")
    finally:
        await stream.aclose()
    if show:
        console.out("")
        console.file.flush()
    return stream.response.text, stream.record


def ask(
    prompt: Annotated[str, typer.Argument(help="The task or question; '-' reads standard input")],
    agent: AgentOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming")] = False,
    local: LocalOption = False,
) -> None:
    """Ask one agent; stream the answer, then print the route it took."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise fail("the prompt is empty")
    runtime = runtime_or_exit(config, borrow=not local)  # a running serve's limits are this process's too
    name = _agent_or_exit(runtime, agent)

    async def go() -> int:
        try:
            text, record = await _turn(runtime, name, [Message("user", prompt)], show=not as_json)
        except ChainExhausted as exc:
            record, text = exc.record, ""
            if not as_json:
                err.print(f"[bold red]error:[/] {exc}", highlight=False)
        except StreamInterrupted as exc:
            record, text = exc.record, exc.partial
            if not as_json:
                err.print(f"\n[bold red]error:[/] {exc}", highlight=False)
        finally:
            await runtime.aclose()
        if as_json:
            out = {"id": record.id, "agent": record.agent, "model": record.model, "outcome": record.outcome,
                   "answer": text, "error": record.error,
                   "route": {k: v for k, v in asdict(record).items() if k not in ("prompt", "response", "thinking")}}
            console.out(json.dumps(out, indent=2), highlight=False)
        else:
            err.print(f"[dim]{route_line(record)}[/]", highlight=False)
        return 0 if record.outcome.answered else 1

    raise typer.Exit(run(go))


def chat(agent: AgentOption = None, config: ConfigOption = None, local: LocalOption = False) -> None:
    """Interactive conversation, resumed next time. Without --agent the orchestrator picks an agent per turn;
    '/agent NAME' talks to one agent ('/agent auto' goes back), '/reset' forgets, '/quit' ends."""
    runtime = runtime_or_exit(config, borrow=not local)  # a running serve's limits are this process's too
    name: str | None = _agent_or_exit(runtime, agent) if agent else None  # None: the orchestrator decides
    store = ConversationStore(runtime.log_path)  # history persists in the routing log database
    conversation = store.conversation("cli", "default")
    history: list[Message] = store.load(conversation, CHAT_HISTORY_TOKENS)

    async def go() -> None:
        nonlocal name
        console.print(f"[bold]modelyard chat[/] — talking to [cyan]{name or 'auto (orchestrator)'}[/]. "
                      "/agent NAME to switch, /quit to leave.")
        if history:
            console.print(f"[dim]resuming: {len(history)} earlier messages; /reset starts over[/]")
        try:
            while True:
                try:
                    line = console.input(f"[bold cyan]{name or 'auto'}>[/] ")
                except EOFError:
                    break
                line = line.strip()
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    break
                if line == "/reset":
                    store.reset(conversation)
                    history.clear()
                    console.print("history cleared")
                    continue
                if line.startswith("/agent"):
                    wanted = line.removeprefix("/agent").strip()
                    if wanted in runtime.config.agents or wanted == "auto":
                        name = None if wanted == "auto" else wanted
                        console.print(f"now talking to [cyan]{wanted}[/]")
                        last = next((t for t in reversed(store.turns(conversation)) if t.role == "assistant"), None)
                        if (name is not None and last is not None and last.request_id and last.agent != name
                                and correct_routing(runtime, last.request_id, name, LabelSource.CHAT)):
                            err.print(f"[dim]noted: your last message belonged to {name} "
                                      "(`modelyard routing learn` teaches routing)[/]")
                    else:
                        console.print(f"[red]unknown agent '{wanted}'[/] (agents: {', '.join(runtime.config.agents)})")
                    continue
                history.append(Message("user", line))
                try:
                    if name is None:
                        result = await _orchestrated_turn(runtime, history)
                        answered = (result.text, result.agent, result.model, result.request_id)
                    else:
                        text, record = await _turn(runtime, name, history, show=True)
                        answered = (text, record.agent, record.model, record.id)
                    history.append(Message("assistant", answered[0]))
                    store.append(conversation, "user", line)
                    store.append(conversation, "assistant", answered[0], agent=answered[1], model=answered[2],
                                 request_id=answered[3], keep_tokens=CHAT_HISTORY_TOKENS)
                    history[:] = store.load(conversation, CHAT_HISTORY_TOKENS)
                    if name is None:
                        err.print(f"[dim]{result.agent} · {result.model or 'no model'} · "
                                  f"{' | '.join(result.route)} · id {result.request_id}[/]", highlight=False)
                        continue
                except (ChainExhausted, StreamInterrupted) as exc:
                    history.pop()
                    record = exc.record
                    err.print(f"[bold red]error:[/] {exc}", highlight=False)
                except AgentError as exc:
                    history.pop()
                    err.print(f"[bold red]error:[/] {exc}", highlight=False)
                    continue
                err.print(f"[dim]{route_line(record)}[/]", highlight=False)
        finally:
            store.close()
            await runtime.aclose()

    run(go)


async def _orchestrated_turn(runtime: Runtime, history: list[Message]) -> TurnResult:
    """One turn through the orchestrator, streaming the final agent's visible text to the terminal."""
    shown = ""

    async def show(text: str) -> None:
        nonlocal shown
        delta = text[len(shown):] if text.startswith(shown) else "\n" + text
        console.out(delta, end="", highlight=False)
        shown = text

    result = await handle_turn(runtime, history, on_text=show)
    console.out("" if shown else result.text)
    console.file.flush()
    return result
