"""One conversational turn, the entry point every front-end (Telegram, chat, gateway) uses.

Front-ends hand over the conversation so far and get the answer streamed back through
``on_text`` (called with the *accumulated* visible text, so a front-end that edits one
message can simply show the latest value). Thinking text never reaches ``on_text``, nor the
next agent of a hand-off.

With no agent named (or the orchestrator named), the orchestrator picks one — classifier
first, its model only when unsure — and the decision is logged. The chosen agent's output
then follows the configured hand-offs (writer → utility), each refused up front if the chain
loops or is deeper than ``orchestration.max_depth``. Only the last agent streams; agents with
tools run the agent loop and deliver their final answer in one piece.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from modelyard.agents.classifier import Decision
from modelyard.agents.decision_log import DecisionLog
from modelyard.agents.errors import UnknownAgent
from modelyard.agents.learning import learned_labels
from modelyard.agents.loop import run_agent_loop
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.tools import has_tools, open_toolbox
from modelyard.agents.topology import handoff_path, orchestrator_name
from modelyard.agents.visible import visible_text
from modelyard.config.schema import Config
from modelyard.router.fit import fit
from modelyard.router.records import new_request_id
from modelyard.runtime import Runtime
from modelyard.tokens import message_tokens
from modelyard.types import ChatRequest, Message

OnText = Callable[[str], Awaitable[None]]
log = logging.getLogger(__name__)


@dataclass
class TurnResult:
    text: str
    agent: str
    model: str | None
    request_id: str
    #: human-readable steps, e.g. ["orchestrator: engineer (fast, 0.82, 1.2ms)", "engineer → qwen-coder-0.5b"]
    route: list[str] = field(default_factory=list)
    #: the orchestrator's decision, when it made one
    decision: Decision | None = None


_orchestrators: dict[int, tuple[Config, Orchestrator | None]] = {}
_build_lock = threading.Lock()


def orchestrator_for(config: Config) -> Orchestrator | None:
    """The (cached) orchestrator of a config, or None when the config has none. Its fast path also
    trains on the labels ``modelyard routing learn`` accepted (read once, from the routing log)."""
    with _build_lock:
        cached = _orchestrators.get(id(config))
        if cached is None or cached[0] is not config:
            cached = (config, Orchestrator.from_config(config, learned_labels(config)))
            _orchestrators[id(config)] = cached
            while len(_orchestrators) > 8:
                _orchestrators.pop(next(iter(_orchestrators)))
        return cached[1]


async def _orchestrator(config: Config) -> Orchestrator | None:
    cached = _orchestrators.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    return await asyncio.to_thread(orchestrator_for, config)  # training takes ~0.2 s: once, off the loop


def _too_long(config: Config, agent: str, text: str) -> str | None:
    """Refuse only a message no model of the agent's chain can take (router/fit.py); one too long for
    some of them goes to the router, which skips those and tries the larger ones."""
    found = fit(config, [agent], message_tokens(text))
    if found.too_long:
        return (f"The message is too long for agent '{agent}' (about {found.tokens} tokens; its largest model "
                f"takes about {found.largest}). Please shorten it or send it in parts.")
    return None


def _handoff_messages(request: str, source: str, output: str) -> list[Message]:
    return [Message("user", f"The user asked:\n{request}\n\nThe {source} agent produced:\n{output}\n\n"
                            "Do your part on this output and reply with the result only.")]


async def handle_turn(runtime: Runtime, history: list[Message], *, agent: str | None = None,
                      on_text: OnText | None = None) -> TurnResult:
    """Answer the last user message of ``history``; ``agent`` None lets the orchestrator choose.

    Raises :class:`UnknownAgent`, :class:`HandoffRefused` (clear messages for the user), and
    ChainExhausted / StreamInterrupted from :mod:`modelyard.router` when no model answers.
    """
    config, router = runtime.config, runtime.router
    text = next((m.content for m in reversed(history) if m.role == "user"), "")
    if agent is not None and agent not in config.agents:
        raise UnknownAgent(agent, list(config.agents))
    orchestrated = agent is None or agent == orchestrator_name(config)
    orchestrator = await _orchestrator(config) if orchestrated else None
    if not text.strip():
        return TurnResult("There is nothing to answer: the message is empty.", agent or config.first_agent,
                          None, "", ["refused: empty message"])
    route: list[str] = []
    decision = None
    first_id = new_request_id()
    if orchestrator is not None:
        decision = await orchestrator.decide(router, text, request_id=first_id)
        route.append(f"{orchestrator.name}: {decision.describe()}")
        DecisionLog.for_path(runtime.log_path).submit(
            decision, text=text if config.log.store_text else None, request_id=first_id)
        start = decision.agent
    else:
        start = agent or config.first_agent
    path = handoff_path(config, start)
    if (problem := _too_long(config, start, text)) is not None:
        return TurnResult(problem, start, None, "", [*route, "refused: message too long"], decision)

    messages = history
    result = TurnResult("", start, None, "", route, decision)
    for index, name in enumerate(path):
        last = index == len(path) - 1
        request_id = first_id if index == 0 else new_request_id()
        parent_id = None if index == 0 else first_id
        output, model, rid = await _run_agent(runtime, name, messages, on_text if last else None,
                                              request_id=request_id, parent_id=parent_id, route=route)
        route.append(f"{name} → {model or 'nobody'}")
        result.text, result.agent, result.model, result.request_id = output, name, model, rid
        if not last:
            messages = _handoff_messages(text, name, output)
    return result


async def _run_agent(runtime: Runtime, name: str, messages: list[Message], on_text: OnText | None, *,
                     request_id: str, parent_id: str | None, route: list[str]) -> tuple[str, str | None, str]:
    """Run one agent: the tool loop if it has tools, else one streamed (or buffered) answer."""
    router, cfg = runtime.router, runtime.config.agents[name]
    if has_tools(cfg.tools):
        base = runtime.config_path.parent if runtime.config_path.exists() else None
        async with open_toolbox(name, cfg.tools, base) as toolbox:
            looped = await run_agent_loop(router, name, messages, toolbox, parent_id=parent_id,
                                          request_id=request_id)
        route.extend(looped.steps)
        if looped.failed:
            log.warning("agent %s: tool loop failed: %s", name, looped.text)
        if on_text is not None:
            await on_text(looped.text)
        return looped.text, looped.model, looped.request_id
    request = ChatRequest(messages=messages)
    if on_text is None:
        routed = await router.complete(name, request, request_id=request_id, parent_id=parent_id)
        return visible_text(routed.response.text).strip(), routed.record.model, routed.record.id
    stream = router.stream(name, request, request_id=request_id, parent_id=parent_id)
    raw, shown = "", ""
    try:
        async for chunk in stream:
            if chunk.kind == "text":
                raw += chunk.text
                now = visible_text(raw)
                if now != shown:
                    shown = now
                    await on_text(now)
    finally:
        await stream.aclose()
    return visible_text(raw).strip(), stream.record.model, stream.record.id
