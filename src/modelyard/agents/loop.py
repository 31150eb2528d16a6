"""The agent loop: the model asks for tools, modelyard runs them and feeds the results back.

Each step is one buffered :meth:`Router`-routed call with the agent's tools offered. A reply
counts as *usable* when it is a structured tool call, a final text answer, or — only for a
model configured with ``tool_text_fallback: true`` — a tool call written as plain text, which
is then turned into a real call. A text-written call from any other model is the tool-calling
trap: the attempt fails as ``unusable_reply`` and the router moves on to the next model, so the
agent never silently does nothing. Arguments that do not fit the tool's schema get one repair
round-trip (the error goes back as the tool result); a second bad call ends the loop. A turn
asking for more than :data:`MAX_CALLS_PER_STEP` calls at once (small models emit dozens) runs
that many; the rest get an error result saying so, as every call must be answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.agents.tool_text import find_text_calls, text_call_problem
from modelyard.agents.tools import Toolbox, ToolOutcome
from modelyard.agents.visible import visible_text
from modelyard.config.schema import Config
from modelyard.router import Router
from modelyard.router.records import RequestRecord
from modelyard.router.router import Routed
from modelyard.types import ChatRequest, ChatResponse, Message, ToolCall

#: tool calls run from one reply; each can take up to its timeout and add up to output_limit to the context
MAX_CALLS_PER_STEP = 16

#: (answering model, its answer) -> None if usable, else why not
Check = Callable[[str, ChatResponse], str | None]


@dataclass
class LoopResult:
    text: str
    model: str | None
    request_id: str
    #: one line per tool call, e.g. "engineer: read_file ok"
    steps: list[str] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    failed: bool = False


async def complete_checked(router: Router, agent: str, request: ChatRequest, check: Check, *,
                           request_id: str | None = None, parent_id: str | None = None) -> Routed:
    """:meth:`Router.complete` with an acceptance check that knows which model answered: whether a
    text-written tool call is usable depends on that model's ``tool_text_fallback``."""
    return await router.complete(agent, request, accept=lambda answer: check(answer.model, answer),
                                 request_id=request_id, parent_id=parent_id)


def usable_reply(config: Config) -> Check:
    def check(model: str, answer: ChatResponse) -> str | None:
        problem = text_call_problem(config, answer)
        if problem is None and not answer.tool_calls and not visible_text(answer.text).strip():
            return "empty reply to a tool step"
        return problem

    return check


def _calls(answer: ChatResponse, step: int) -> tuple[list[ToolCall], dict[str, str], bool]:
    """Structured calls, else text-written ones: (calls, parse errors by call id, from_text)."""
    if answer.tool_calls:
        calls = [ToolCall(c.name, c.arguments, c.id or f"call_{step}_{i}", c.raw, c.invalid)
                 for i, c in enumerate(answer.tool_calls)]
        # arguments the model wrote as no JSON object: answered with an error it can repair (one round-trip)
        bad = {call.id: f"arguments were {c.invalid}; call the tool again with a JSON object"
               for call, c in zip(calls, answer.tool_calls, strict=True) if c.invalid}
        return calls, bad, False
    calls, errors = [], {}
    for i, found in enumerate(find_text_calls(answer.text)):
        call = ToolCall(found.name, found.arguments, f"text_call_{step}_{i}")
        calls.append(call)
        if found.error:
            errors[call.id] = found.error
    return calls, errors, bool(calls)


async def run_agent_loop(router: Router, agent: str, messages: list[Message], toolbox: Toolbox, *,
                         parent_id: str | None = None, request_id: str | None = None) -> LoopResult:
    config = router.config
    max_steps = config.agents[agent].tools.max_steps
    check = usable_reply(config)
    convo = list(messages)
    result = LoopResult("", None, "")
    repaired = False
    for step in range(max_steps):
        await toolbox.refresh()  # an MCP server's tools/list_changed: the model sees the list as it is now
        definitions = toolbox.definitions()
        routed = await complete_checked(router, agent, ChatRequest(messages=convo, tools=definitions), check,
                                        request_id=request_id if step == 0 else None, parent_id=parent_id)
        result.records.append(routed.record)
        result.model, result.request_id = routed.record.model, routed.record.id
        answer = routed.response
        calls, errors, from_text = _calls(answer, step)
        if not calls:
            result.text = visible_text(answer.text).strip()
            return result
        # the model's own words stay (for a text-written call they *are* the call); thinking never does
        convo.append(Message("assistant", answer.text if from_text else visible_text(answer.text), tool_calls=calls))
        bad: list[str] = []
        for n, call in enumerate(calls):
            if n >= MAX_CALLS_PER_STEP:
                convo.append(Message("tool", f"error: not run: at most {MAX_CALLS_PER_STEP} tool calls are run "
                                             "per step; make the rest in the next step", tool_call_id=call.id,
                                     name=call.name))
                continue
            if call.id in errors:
                outcome = ToolOutcome(call.name, False, f"error: could not read the call to '{call.name}': "
                                                        f"{errors[call.id]}", bad_arguments=True)
            else:
                outcome = await toolbox.call(call)
            how = " (from text)" if from_text else ""
            result.steps.append(f"{agent}: {call.name}{how} {'ok' if outcome.ok else 'error'}")
            text = outcome.text
            if outcome.bad_arguments:
                bad.append(outcome.text)
                text += "\nCall the tool again with arguments that match its JSON schema."
            convo.append(Message("tool", text, tool_call_id=call.id, name=call.name))
        if len(calls) > MAX_CALLS_PER_STEP:
            result.steps.append(f"{agent}: {len(calls) - MAX_CALLS_PER_STEP} more tool calls not run "
                                f"(at most {MAX_CALLS_PER_STEP} per step)")
        if bad:
            if repaired:
                result.text = (f"I could not finish this: the model sent unusable tool arguments again after "
                               f"one repair ({bad[0].removeprefix('error: ')}).")
                result.failed = True
                return result
            repaired = True
    result.text = f"I could not finish this within {max_steps} tool steps (tools.max_steps)."
    result.failed = True
    return result
