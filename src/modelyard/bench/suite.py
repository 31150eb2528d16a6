"""Load a bench suite and find every problem before anything runs, located like config errors.

Beyond the schema (unknown keys, missing prompt) a suite is linted: regexes and JSON Schemas must
compile, ``python`` expressions must parse and name only what they are given, a ``tool_call`` must
name a tool the task offers, a ``judge`` check needs a judge model, and a task's ``sample`` answer
must pass the task's own checks (a ``python`` check that raises on it is reported as such). Errors
name the file, the line, the key and the task.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelyard.bench.checks import (
    Answer,
    evaluate,
    python_problem,
    regex_problem,
    run_python,
    schema_problem,
)
from modelyard.bench.spec import CheckKind, SampleSpec, Suite, TaskSpec
from modelyard.config.loader import Loc, dotted, line_for, located, read_source, read_yaml
from modelyard.config.schema import Config
from modelyard.errors import ConfigError
from modelyard.types import ToolCall

STARTER = "starter.yaml"
#: checks that cannot be judged on a written-down sample answer
_NOT_ON_SAMPLES = (CheckKind.JUDGE, CheckKind.MAX_TOKENS, CheckKind.MAX_SECONDS)


def starter_text() -> str:
    """The starter suite shipped with modelyard (six agents, deterministic checks)."""
    return (resources.files("modelyard.bench") / STARTER).read_text(encoding="utf-8")


@dataclass
class LoadedSuite:
    spec: Suite
    path: str
    lines: dict[Loc, int]

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.path).stem

    def tasks(self, agents: Iterable[str] | None = None) -> Iterator[tuple[str, TaskSpec]]:
        wanted = set(agents) if agents is not None else None
        for agent, block in self.spec.agents.items():
            if wanted is None or agent in wanted:
                for task in block.tasks:
                    yield agent, task

    def error(self, loc: Loc, message: str) -> ConfigError:
        task = _task_id(self.spec.model_dump(), loc)
        return ConfigError((f"task '{task}': " if task else "") + message, path=self.path,
                           line=line_for(self.lines, loc), key=dotted(loc))

    def check_against(self, config: Config, agents: list[str] | None = None) -> None:
        """The suite's agents and judge must exist in the config being benchmarked."""
        for agent in self.spec.agents:
            if (agents is None or agent in agents) and agent not in config.agents:
                known = ", ".join(config.agents)
                # the starter suite's six agents against a config of two: it said no more than this, and what to do
                # (bench the others, or edit one of the two files) was left to guess
                both = [a for a in self.spec.agents if a in config.agents and (agents is None or a in agents)]
                fix = (f"bench the agents both have with --agents {','.join(both)}, or take its block out of the suite"
                       if both else "rename the suite's agents to the config's, or take its block out of the suite")
                raise self.error(("agents", agent), f"agent '{agent}' is not in the config (agents: {known}): {fix}")
        judge = self.spec.judge
        if judge is not None and judge.model not in config.models:
            raise self.error(("judge", "model"), f"judge model '{judge.model}' is not in the config "
                                                 f"(models: {', '.join(config.models)}): set judge.model to one of "
                                                 "them, or take judge: out")


def parse_suite(text: str, source: str = "<suite>") -> LoadedSuite:
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with 'agents:'", path=source, line=1)
    try:
        spec = Suite.model_validate(data)
    except ValidationError as exc:
        err = located(exc, lines, source, root=Suite)
        task = _task_id(data, tuple(exc.errors()[0]["loc"]))
        if task:
            err = ConfigError(f"task '{task}': {err.detail}", path=err.path, line=err.line, key=err.key)
        raise err from None
    loaded = LoadedSuite(spec, source, lines)
    for loc, message in lint(spec):
        raise loaded.error(loc, message)
    return loaded


def load_suite(path: str | os.PathLike[str]) -> LoadedSuite:
    return parse_suite(*read_source(path))


def _task_id(data: Any, loc: tuple[Any, ...]) -> str | None:
    """The id of the task a location points into, when it has one."""
    if len(loc) < 4 or loc[0] != "agents" or loc[2] != "tasks" or not isinstance(loc[3], int):
        return None
    try:
        task = data["agents"][loc[1]]["tasks"][loc[3]]
    except (KeyError, IndexError, TypeError):
        return None
    return str(task["id"]) if isinstance(task, dict) and task.get("id") else f"#{loc[3] + 1}"


def lint(spec: Suite) -> Iterator[tuple[Loc, str]]:
    for agent, block in spec.agents.items():
        seen: set[str] = set()
        for i, task in enumerate(block.tasks):
            base: Loc = ("agents", agent, "tasks", i)
            if task.id in seen:
                yield (*base, "id"), f"task id '{task.id}' appears twice in agent '{agent}'"
            seen.add(task.id)
            yield from _lint_task(spec, task, base)


def _lint_task(spec: Suite, task: TaskSpec, base: Loc) -> Iterator[tuple[Loc, str]]:
    for t, tool in enumerate(task.tools):
        if problem := schema_problem(tool.parameters):
            yield (*base, "tools", t, "parameters"), problem
    offered = {t.name for t in task.tools}
    for j, check in enumerate(task.checks):
        loc: Loc = (*base, "checks", j, check.kind.value)
        kind, value = check.kind, check.value
        problem = None
        if kind is CheckKind.REGEX:
            problem = regex_problem(value)
        elif kind is CheckKind.JSON_SCHEMA:
            problem = schema_problem(value)
        elif kind is CheckKind.PYTHON:
            problem = python_problem(value)
        elif kind is CheckKind.TOOL_CALL:
            if value.name not in offered and not task.agent_tools:
                problem = (f"expects a call to '{value.name}' but the task offers no such tool "
                           f"(tools: {', '.join(sorted(offered)) or 'none'})")
            for arg, constraint in value.arguments.items():
                if isinstance(constraint, dict) and (why := regex_problem(str(constraint.get("regex", "")))):
                    yield (*loc, "arguments", arg), why
        elif kind is CheckKind.JUDGE and spec.judge is None:
            problem = "a judge check needs a judge model: add 'judge: {model: NAME}' at the top of the suite"
        if problem:
            yield loc, problem
    if task.sample is not None:
        yield from _lint_sample(task, base)


def _lint_sample(task: TaskSpec, base: Loc) -> Iterator[tuple[Loc, str]]:
    sample = task.sample if isinstance(task.sample, SampleSpec) else SampleSpec(text=task.sample or "")
    answer = Answer(sample.text.strip(), [ToolCall(c.name, c.arguments) for c in sample.tool_calls],
                    tools={t.name: t.parameters for t in task.tools})
    for j, check in enumerate(task.checks):
        if check.kind in _NOT_ON_SAMPLES:
            continue
        loc: Loc = (*base, "checks", j, check.kind.value)
        if check.kind is CheckKind.PYTHON:
            try:
                run_python(check.value, answer)
            except Exception as exc:
                yield loc, f"the expression raises {type(exc).__name__} on the task's sample answer: {exc}"
                continue
        result = evaluate(check, answer)
        if not result.ok:
            yield loc, f"{result.label} fails on the task's own sample answer ({result.detail})"
