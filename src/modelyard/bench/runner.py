"""Run a suite: every task k times on every candidate model, each model alone, at its own concurrency.

Models run one after another (local models share cores and memory: running two at once would
measure the contention, not the model), each warmed up first so no run pays the cold start, with
as many runs in flight as its ``max_concurrent``. Runs go in repetition order (every task once, then
every task again…), so an interrupted bench still covers every task. Each finished run is handed to
``on_result`` at once (the CLI writes it to the routing log); Ctrl-C ends the bench with what finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelyard.agents.tools import has_tools, open_toolbox
from modelyard.agents.visible import visible_text
from modelyard.bench.call import Call, call_model
from modelyard.bench.checks import Answer, CheckResult, ToolUse, evaluate, tool_use
from modelyard.bench.judge import judge_request, parse_verdict
from modelyard.bench.spec import CheckKind, TaskSpec
from modelyard.bench.suite import LoadedSuite
from modelyard.config.schema import Config
from modelyard.errors import ProviderError
from modelyard.providers import Provider
from modelyard.providers.http import load_http_client
from modelyard.providers.speed import measured
from modelyard.types import ChatRequest, Message, ToolDefinition


class RunOutcome(StrEnum):
    OK = "ok"  # the model answered (the checks decide whether it passed)
    ERROR = "error"  # no answer: the reason says why


@dataclass
class RunResult:
    run_id: str
    suite: str
    agent: str
    task: str
    model: str
    provider: str
    is_local: bool
    rep: int
    k: int
    concurrency: int
    passed: bool
    outcome: RunOutcome
    checks: list[CheckResult] = field(default_factory=list)
    judged: bool = False
    reason: str | None = None
    error: str | None = None
    retries: Counter[str] = field(default_factory=Counter)
    #: how the answer used the tools, for tasks that expect a tool call (None otherwise)
    tool_use: ToolUse | None = None
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_per_s: float | None = None
    cost_usd: float = 0.0
    answer: str = ""
    ts: float = field(default_factory=time.time)

    def row(self, store_text: bool = True) -> dict[str, Any]:
        """The ``bench_runs`` row (and the JSONL export's ``run`` record)."""
        return {
            "run_id": self.run_id, "ts": self.ts, "suite": self.suite, "agent": self.agent, "task": self.task,
            "model": self.model, "provider": self.provider, "is_local": int(self.is_local), "rep": self.rep,
            "k": self.k, "concurrency": self.concurrency, "passed": int(self.passed), "judged": int(self.judged),
            "checks": json.dumps([c.to_dict() for c in self.checks]), "outcome": str(self.outcome),
            "reason": self.reason, "error": self.error, "retries": sum(self.retries.values()),
            "retry_reasons": json.dumps(dict(self.retries)) if self.retries else None,
            "tool_use": str(self.tool_use) if self.tool_use else None, "ttft_ms": self.ttft_ms,
            "total_ms": self.total_ms, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "tokens_per_s": self.tokens_per_s, "cost_usd": self.cost_usd,
            "answer": self.answer if store_text else None,
        }


@dataclass
class BenchResult:
    run_id: str
    suite: str
    k: int
    models: list[str]
    agents: list[str]
    results: list[RunResult] = field(default_factory=list)
    #: models that were not measured, and why (missing credentials, unreachable at warm-up…)
    skipped: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    judge_cost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def measured(self) -> list[str]:
        """Models that ran at least once (an interrupted bench may not have reached every model)."""
        ran = {r.model for r in self.results}
        return [m for m in self.models if m in ran]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def build_request(config: Config, agent: str, task: TaskSpec, tools: list[ToolDefinition]) -> ChatRequest:
    """The request the agent would send: its system prompt, thinking setting and output budget."""
    cfg = config.agents[agent]
    if task.messages is not None:
        messages = [Message(m.role, m.content) for m in task.messages]
    else:
        messages = [Message("user", task.prompt or "")]
    system = cfg.system_prompt(agent)
    if system and not any(m.role == "system" for m in messages):
        messages = [Message("system", system), *messages]
    return ChatRequest(messages, tools=tools, thinking=cfg.thinking, thinking_budget=cfg.thinking_budget,
                       max_tokens=task.max_tokens or cfg.max_tokens, json_output=task.json_mode)


def task_text(task: TaskSpec) -> str:
    if task.prompt is not None:
        return task.prompt
    return "\n".join(f"{m.role}: {m.content}" for m in task.messages or [])


class BenchRunner:
    def __init__(self, config: Config, suite: LoadedSuite, *, models: list[str], agents: list[str], k: int,
                 providers: dict[str, Provider], on_result: Callable[[RunResult], None] | None = None,
                 on_model: Callable[[str], None] | None = None,
                 on_skip: Callable[[str, str, int], None] | None = None, config_dir: Path | None = None,
                 run_id: str | None = None):
        self.config, self.suite, self.k = config, suite, k
        self.models, self.agents = models, agents
        self.providers = providers
        self.on_result = on_result or (lambda _r: None)
        self.on_model = on_model or (lambda _m: None)
        self.on_skip = on_skip or (lambda _m, _why, _n: None)
        self.config_dir = config_dir
        self.result = BenchResult(run_id or new_run_id(), suite.name, k, list(models), list(agents))
        self.jobs = [(rep, agent, task) for rep in range(k) for agent, task in suite.tasks(agents)]
        judge = suite.spec.judge
        self._judge_gate = (asyncio.Semaphore(config.models[judge.model].max_concurrent) if judge else None)

    @property
    def total_runs(self) -> int:
        return len(self.jobs) * len(self.models)

    async def run(self) -> BenchResult:
        """Every model in turn; returns what finished even when cancelled (Ctrl-C)."""
        started = time.perf_counter()
        if any(self.config.models[m].provider != "llamacpp" for m in self.models):
            load_http_client()  # not in the first run's TTFT (0.4-0.8 s of import at load ~7; Ollama's warm-up hid it)
        try:
            async with AsyncExitStack() as stack:
                agent_tools = await self._agent_tools(stack)
                for model in self.models:
                    self.on_model(model)
                    await self._run_model(model, agent_tools)
        except asyncio.CancelledError:
            self.result.interrupted = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self.result.seconds = time.perf_counter() - started
        return self.result

    async def _agent_tools(self, stack: AsyncExitStack) -> dict[str, list[ToolDefinition]]:
        """Definitions of the configured tools of agents whose tasks ask for them (never executed)."""
        out: dict[str, list[ToolDefinition]] = {}
        for agent in {a for a, t in self.suite.tasks(self.agents) if t.agent_tools}:
            cfg = self.config.agents[agent].tools
            if has_tools(cfg):
                box = await stack.enter_async_context(open_toolbox(agent, cfg, self.config_dir))
                out[agent] = box.definitions()
        return out

    async def _run_model(self, model: str, agent_tools: dict[str, list[ToolDefinition]]) -> None:
        provider = self.providers[model]
        why = provider.unavailable_reason()
        if why is None:
            # not measured: the first run must not pay the model's load time. A failed warm-up is not
            # fatal: if the model is really down, its runs say so, with reasons
            with contextlib.suppress(ProviderError):
                await provider.warmup(self.config.models[model].keep_alive)
        if why is not None:
            self.result.skipped[model] = why
            self.on_skip(model, why, len(self.jobs))
            return
        gate = asyncio.Semaphore(self.config.models[model].max_concurrent)

        async def one(rep: int, agent: str, task: TaskSpec) -> None:
            tools = [ToolDefinition(t.name, t.description, t.parameters) for t in task.tools]
            if task.agent_tools:
                tools += agent_tools.get(agent, [])
            request = build_request(self.config, agent, task, tools)
            async with gate:
                call = await call_model(provider, request, self.config.timeouts_for(agent, model),
                                        self.config.defaults.retries)
            result = await self._score_run(model, rep, agent, task, tools, call)
            self.result.results.append(result)
            self.on_result(result)

        await asyncio.gather(*(one(rep, agent, task) for rep, agent, task in self.jobs))

    async def _score_run(self, model: str, rep: int, agent: str, task: TaskSpec, tools: list[ToolDefinition],
                         call: Call) -> RunResult:
        cfg = self.config.models[model]
        result = RunResult(
            self.result.run_id, self.suite.name, agent, task.id, model, cfg.provider, cfg.is_local, rep, self.k,
            cfg.max_concurrent, passed=False, outcome=RunOutcome.OK, retries=call.retries,
            total_ms=call.wall * 1000, tokens_in=call.usage.input_tokens, tokens_out=call.usage.output_tokens,
            cost_usd=cfg.price.cost(call.usage.input_tokens, call.usage.output_tokens, call.usage.cache_read_tokens,
                                    call.usage.cache_write_tokens, read_share=cfg.cache_read_share,
                                    cache_write_1h=call.usage.cache_write_1h_tokens))
        if call.response is None:
            assert call.error is not None
            result.outcome, result.reason, result.error = RunOutcome.ERROR, str(call.error.reason), call.error.message
            return result
        response = call.response
        result.ttft_ms = call.ttft * 1000 if call.ttft is not None else None
        # the server's own speed, else the span when it can say (providers/speed.py): a short answer in one burst
        # read thousands of tok/s in bench's table and replay's profile of the model
        result.tokens_per_s = response.usage.tokens_per_s or measured(response.usage.output_tokens,
                                                                      call.service - (call.ttft or 0.0))
        answer = Answer(visible_text(response.text).strip(), list(response.tool_calls),
                        tokens_out=response.usage.output_tokens, seconds=call.wall,
                        tools={t.name: t.parameters for t in tools})
        result.answer = answer.text or "\n".join(f"[tool call] {c.name}({c.arguments})" for c in answer.tool_calls)
        result.checks = [evaluate(c, answer) for c in task.checks if c.kind is not CheckKind.JUDGE]
        if any(c.kind is CheckKind.TOOL_CALL for c in task.checks):
            result.tool_use = tool_use(answer)
        if all(c.ok for c in result.checks):
            for check in task.checks:
                if check.kind is CheckKind.JUDGE:
                    result.checks.append(await self._judge(check.judge or "", task, answer))
                    result.judged = True
        result.passed = all(c.ok for c in result.checks)
        return result

    async def _judge(self, rubric: str, task: TaskSpec, answer: Answer) -> CheckResult:
        spec = self.suite.spec.judge
        assert spec is not None and self._judge_gate is not None
        provider = self.providers[spec.model]
        request = judge_request(rubric, task_text(task), answer.text, spec.max_tokens)
        async with self._judge_gate:
            call = await call_model(provider, request, self.config.timeouts_for(None, spec.model),
                                    self.config.defaults.retries)
        judge = self.config.models[spec.model]
        self.result.judge_cost_usd += judge.price.cost(
            call.usage.input_tokens, call.usage.output_tokens, call.usage.cache_read_tokens,
            call.usage.cache_write_tokens, read_share=judge.cache_read_share,
            cache_write_1h=call.usage.cache_write_1h_tokens)
        if call.response is None:
            assert call.error is not None
            return CheckResult("judge", False, f"judge {spec.model} failed: {call.error.reason}", judged=True)
        try:
            ok, why = parse_verdict(visible_text(call.response.text))
        except ValueError as exc:
            return CheckResult("judge", False, str(exc), judged=True)
        return CheckResult("judge", ok, why, judged=True)
