"""One conversational turn, the entry point every front-end (Telegram, chat, ask) uses.

Front-ends hand over the conversation so far and get the answer streamed back through
``on_text`` (called with the *accumulated* visible text, so a front-end that edits one
message can simply show the latest value; a call whose text does not continue the previous
one *replaces* it). Thinking text never reaches ``on_text``, nor the next agent of a hand-off.

With no agent named (or the orchestrator named), the orchestrator picks one — classifier
first, its model only when unsure — and the decision is logged. The chosen agent's answer
streams to the user as it is written; then it follows the configured hand-offs (writer →
utility), each refused up front if the chain loops or is deeper than
``orchestration.max_depth``. A hand-off runs buffered and its result replaces the answer only
if it passes its check (agents/handoff.py); otherwise the answer so far stands, and the route
says why. Agents with tools run the agent loop and deliver their answer in one piece.

Every request the turn makes is in ``TurnResult.records`` (and in the ``records`` list a
front-end passes in, filled as each starts — so after a Ctrl-C it can still show what ran).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from modelyard.agents.classifier import Decision
from modelyard.agents.decision_log import log_decision
from modelyard.agents.errors import UnknownAgent
from modelyard.agents.handoff import handoff_request, rejection
from modelyard.agents.learning import learned_labels, read_learned_labels
from modelyard.agents.loop import run_agent_loop
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.tools import has_tools, open_toolbox
from modelyard.agents.topology import handoff_path, handoff_purpose, orchestrator_name
from modelyard.agents.visible import visible_text
from modelyard.config.schema import Config
from modelyard.router import ChainExhausted, StreamInterrupted
from modelyard.router.fit import fit
from modelyard.router.records import RequestRecord, new_request_id
from modelyard.runtime import Runtime
from modelyard.tokens import estimate_tokens, message_tokens
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
    #: every request of the turn, in order (the answer's own is :attr:`record`)
    records: list[RequestRecord] = field(default_factory=list)
    #: the request whose text is the answer (None when refused before any model ran)
    record: RequestRecord | None = None


@dataclass
class _Run:
    """One agent's answer within a turn."""

    text: str
    model: str | None
    request_id: str
    truncated: bool = False
    record: RequestRecord | None = None
    #: output tokens (a revision's budget is sized by them)
    tokens: int = 0


#: how often a running front-end looks whether `routing learn` changed the labels its fast path trusts
LABELS_CHECK_EVERY = 30.0


@dataclass(slots=True)
class _Routing:
    """What a runtime routes with: its orchestrator (None when the config has none), the ids of the
    learned labels it was trained on, and when a newer set was last looked for."""

    orchestrator: Orchestrator | None
    labels: tuple[int, ...]
    checked: float
    refreshing: asyncio.Task[bool] | None = None


def _build_routing(runtime: Runtime) -> _Routing:
    labels = learned_labels(runtime.config)
    return _Routing(Orchestrator.from_config(runtime.config, labels), tuple(lab.id for lab in labels),
                    time.monotonic())


def orchestrator_for(runtime: Runtime) -> Orchestrator | None:
    """The runtime's orchestrator (None when the config has none). Its fast path also trains on the
    labels ``modelyard routing learn`` accepted; a running front-end takes newly trusted ones up within
    :data:`LABELS_CHECK_EVERY` seconds (:func:`prepare_routing`), without a restart."""
    return runtime.derived(_Routing, _build_routing).orchestrator


async def prepare_routing(runtime: Runtime) -> Orchestrator | None:
    """:func:`orchestrator_for` without blocking the event loop: training takes seconds on a busy
    machine. Front-ends may call it at start so the first routed turn does not wait. Every
    :data:`LABELS_CHECK_EVERY` seconds it also starts, in the background, a look for labels trusted since
    (:func:`refresh_routing`); the turn routes with what it has meanwhile."""
    built = runtime.derived_if_built(_Routing)
    if built is None:
        return await asyncio.to_thread(orchestrator_for, runtime)
    if built.orchestrator is not None and built.refreshing is None \
            and time.monotonic() - built.checked >= LABELS_CHECK_EVERY:
        built.refreshing = asyncio.create_task(refresh_routing(runtime))
    return built.orchestrator


async def refresh_routing(runtime: Runtime) -> bool:
    """Retrain the fast path, off the event loop, if the trusted labels changed since it was built (a
    ``routing learn``, a ``routing forget``); True if it did. A failure keeps the orchestrator in use."""
    built = runtime.derived(_Routing, _build_routing)
    try:
        labels = await asyncio.to_thread(read_learned_labels, runtime.config)  # unreadable: kept (raises)
        ids = tuple(lab.id for lab in labels)
        if ids == built.labels:
            return False
        orchestrator = await asyncio.to_thread(Orchestrator.from_config, runtime.config, labels)
        runtime.replace_derived(_Routing, _Routing(orchestrator, ids, time.monotonic()))
        log.info("routing: the fast path now trains on %d learned labels (was %d)", len(ids), len(built.labels))
        return True
    except Exception as exc:  # routing goes on with what it has
        log.warning("routing: could not take up newly learned labels (%s)", exc)
        return False
    finally:
        built.checked = time.monotonic()
        built.refreshing = None


def _too_long(config: Config, agent: str, text: str) -> str | None:
    """Refuse only a message no model of the agent's chain can take (router/fit.py); one too long for
    some of them goes to the router, which skips those and tries the larger ones."""
    found = fit(config, [agent], message_tokens(text))
    if found.too_long:
        return (f"The message is too long for agent '{agent}' (about {found.tokens} tokens; its largest model "
                f"takes about {found.largest}). Please shorten it or send it in parts.")
    return None


async def handle_turn(runtime: Runtime, history: list[Message], *, agent: str | None = None,
                      on_text: OnText | None = None, records: list[RequestRecord] | None = None) -> TurnResult:
    """Answer the last user message of ``history``; ``agent`` None lets the orchestrator choose.

    Raises :class:`UnknownAgent`, :class:`HandoffRefused` (clear messages for the user), and
    ChainExhausted / StreamInterrupted from :mod:`modelyard.router` when no model answers.
    """
    config, router = runtime.config, runtime.router
    text = next((m.content for m in reversed(history) if m.role == "user"), "")
    if agent is not None and agent not in config.agents:
        raise UnknownAgent(agent, list(config.agents))
    orchestrated = agent is None or agent == orchestrator_name(config)
    orchestrator = await prepare_routing(runtime) if orchestrated else None
    if not text.strip():
        return TurnResult("There is nothing to answer: the message is empty.", agent or config.first_agent,
                          None, "", ["refused: empty message"])
    route: list[str] = []
    decision = None
    first_id = new_request_id()
    if orchestrator is not None:
        decision = await orchestrator.decide(router, text, request_id=first_id)
        route.append(f"{orchestrator.name}: {decision.describe()}")
        log_decision(runtime.log, decision, text=text if config.log.store_text else None, request_id=first_id)
        start = decision.agent
    else:
        start = agent or config.first_agent
    path = handoff_path(config, start)
    if (problem := _too_long(config, start, text)) is not None:
        return TurnResult(problem, start, None, "", [*route, "refused: message too long"], decision)

    result = TurnResult("", start, None, "", route, decision, records if records is not None else [])
    answer = await _run_agent(runtime, start, history, on_text, request_id=first_id, parent_id=None,
                              route=route, records=result.records)
    route.append(f"{start} → {answer.model or 'nobody'}")
    result.text, result.model, result.request_id, result.record = answer.text, answer.model, answer.request_id, \
        answer.record
    for source, name in itertools.pairwise(path):
        if not await _hand_off(runtime, text, source, name, result, answer, first_id, on_text):
            break  # the answer so far stands; a later hand-off would only build on a result not used
    return result


async def _hand_off(runtime: Runtime, request: str, source: str, name: str, result: TurnResult, upstream: _Run,
                    first_id: str, on_text: OnText | None) -> bool:
    """Run one hand-off; True (and ``result`` updated) when its result replaces the answer."""
    purpose = handoff_purpose(runtime.config, name)
    chat = handoff_request(purpose, request=request, source=source, output=result.text,
                           output_tokens=upstream.tokens or estimate_tokens(result.text),
                           max_tokens=runtime.config.agents[name].max_tokens)
    try:
        run = await _run_agent(runtime, name, chat.messages, None, request_id=new_request_id(), parent_id=first_id,
                               route=result.route, records=result.records, max_tokens=chat.max_tokens)
    except (ChainExhausted, StreamInterrupted) as exc:
        result.records.append(exc.record)
        result.route.append(f"{name} ({purpose}) → nobody: hand-off failed; kept {source}'s answer")
        return False
    why = rejection(purpose, result.text, run.text, truncated=run.truncated)
    if why is not None:
        result.route.append(f"{name} ({purpose}) → {run.model or 'nobody'}: not used, {why}; kept {source}'s answer")
        if run.record is not None:  # the log shows the hand-off ran and why its answer was not the user's
            run.record.error = f"hand-off result not used: {why}; the user got the {source} agent's answer"
            runtime.log.submit(run.record)
        log.info("hand-off %s → %s not used: %s", source, name, why)
        return False
    result.route.append(f"{name} ({purpose}) → {run.model or 'nobody'}: used")
    result.text, result.agent, result.model, result.request_id, result.record = (
        run.text, name, run.model, run.request_id, run.record)
    upstream.tokens = run.tokens
    if on_text is not None:
        await on_text(run.text)
    return True


async def _run_agent(runtime: Runtime, name: str, messages: list[Message], on_text: OnText | None, *,
                     request_id: str, parent_id: str | None, route: list[str], records: list[RequestRecord],
                     max_tokens: int | None = None) -> _Run:
    """Run one agent: the tool loop if it has tools, else one streamed (or buffered) answer."""
    router, cfg = runtime.router, runtime.config.agents[name]
    if has_tools(cfg.tools):
        base = runtime.config_path.parent if runtime.config_path.exists() else None
        async with open_toolbox(name, cfg.tools, base) as toolbox:
            looped = await run_agent_loop(router, name, messages, toolbox, parent_id=parent_id,
                                          request_id=request_id)
        route.extend(looped.steps)
        records.extend(looped.records)
        if looped.failed:
            log.warning("agent %s: tool loop failed: %s", name, looped.text)
        if on_text is not None:
            await on_text(looped.text)
        last = looped.records[-1] if looped.records else None
        return _Run(looped.text, looped.model, looped.request_id, bool(last and last.truncated), last,
                    last.tokens_out if last else 0)
    request = ChatRequest(messages=messages, max_tokens=max_tokens)
    if on_text is None:
        try:
            routed = await router.complete(name, request, request_id=request_id, parent_id=parent_id)
        except ChainExhausted as exc:
            records.append(exc.record)
            raise
        records.append(routed.record)
        return _Run(visible_text(routed.response.text).strip(), routed.record.model, routed.record.id,
                    routed.response.truncated, routed.record, routed.record.tokens_out)
    stream = router.stream(name, request, request_id=request_id, parent_id=parent_id)
    records.append(stream.record)
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
    return _Run(visible_text(raw).strip(), stream.record.model, stream.record.id, stream.response.truncated,
                stream.record, stream.record.tokens_out)
