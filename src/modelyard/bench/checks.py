"""Deterministic checks on one answer, and how the answer used its tools.

The ``python`` check evaluates an expression **from your own suite file** in this process, with a
reduced set of builtins and no names starting with ``_``. That keeps typos and accidents out; it is
not a sandbox — only run suites you wrote or reviewed. It never runs code the *model* wrote.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonschema

from modelyard.agents.tool_text import find_text_calls
from modelyard.bench.spec import CheckKind, CheckSpec, ToolCallSpec
from modelyard.errors import json_problem
from modelyard.types import ToolCall

_FENCE = re.compile(r"\A```[a-zA-Z]*[ \t]*\n(.*?)\n?```\Z", re.DOTALL)

_BUILTINS: dict[str, Any] = {f.__name__: f for f in (
    abs, all, any, bool, dict, enumerate, filter, float, int, isinstance, len, list, map, max, min, range,
    reversed, round, set, sorted, str, sum, tuple, zip)}
#: what a ``python`` check can name besides the builtins above
PYTHON_NAMES = ("answer", "data", "tool_calls", "tokens", "seconds", "re", "json", "math")


@dataclass
class Answer:
    """What a model returned, as the checks see it. ``text`` is the visible text (thinking removed)."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_out: int = 0
    seconds: float = 0.0
    #: offered tool name -> its JSON-Schema parameters
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class CheckResult:
    label: str
    ok: bool
    detail: str = ""
    judged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.label, "ok": self.ok, "detail": self.detail, "judged": self.judged}


class ToolUse(StrEnum):
    """How an answer to a task that expects a tool call used the tools."""

    STRUCTURED = "structured"  # a structured call to an offered tool with schema-valid arguments
    INVALID = "structured_invalid"  # a structured call, but an unknown tool or arguments that break the schema
    TEXT = "text"  # no structured call; a call written into the text (does not count)
    NONE = "none"  # answered in prose


# -- compile-time helpers (used when the suite is loaded) ----------------------------------------

def python_problem(expr: str) -> str | None:
    """Why a ``python`` expression cannot run (syntax, unknown name, private attribute), else None."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        return f"not a Python expression: {exc.msg} (column {exc.offset})"
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return f"'{node.attr}': names starting with '_' are not available"
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and node.id not in PYTHON_NAMES and node.id not in _BUILTINS and node.id not in bound):
            return (f"unknown name '{node.id}' (available: {', '.join(PYTHON_NAMES)} and "
                        f"basic builtins such as len, int, sorted)")
    return None


def schema_problem(schema: dict[str, Any]) -> str | None:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"invalid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
    return None


def regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


# -- evaluation ----------------------------------------------------------------------------------

def parse_json(text: str, allow_fence: bool) -> tuple[Any, str | None]:
    """(value, None) or (None, why not). A fenced block is accepted only with ``allow_fence``."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced and allow_fence:
        body = fenced.group(1).strip()
    try:
        return json.loads(body), None
    except (ValueError, RecursionError) as exc:
        if fenced:
            return None, "JSON wrapped in a ``` fence (set allow_fence: true to accept it)"
        return None, f"not valid JSON ({json_problem(exc)}): {_snippet(text)}"


def _snippet(text: str, n: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else flat[: n - 1] + "…")


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def python_env(answer: Answer) -> dict[str, Any]:
    data, _ = parse_json(answer.text, allow_fence=True)
    return {"__builtins__": _BUILTINS, "answer": answer.text, "data": data,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in answer.tool_calls],
            "tokens": answer.tokens_out, "seconds": answer.seconds, "re": re, "json": json, "math": math}


def run_python(expr: str, answer: Answer) -> Any:
    """Evaluate a suite's expression over an answer (exceptions propagate to the caller)."""
    return eval(compile(expr, "<python check>", "eval"), python_env(answer))


def evaluate(check: CheckSpec, answer: Answer) -> CheckResult:
    """One deterministic check (``judge`` checks are run by the runner, which owns model calls)."""
    kind, value, label = check.kind, check.value, check.label
    fold = (lambda s: s) if check.case_sensitive else str.casefold
    text = answer.text
    if kind is CheckKind.CONTAINS:
        missing = [v for v in _as_list(value) if fold(v) not in fold(text)]
        return CheckResult(label, not missing, f"missing {', '.join(map(repr, missing))}" if missing else "")
    if kind is CheckKind.NOT_CONTAINS:
        present = [v for v in _as_list(value) if fold(v) in fold(text)]
        return CheckResult(label, not present, f"contains {', '.join(map(repr, present))}" if present else "")
    if kind is CheckKind.REGEX:
        ok = re.search(value, text) is not None
        return CheckResult(label, ok, "" if ok else f"no match in {_snippet(text)}")
    if kind is CheckKind.EQUALS:
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        ok = fold(text.strip()) == fold(expected.strip())
        return CheckResult(label, ok, "" if ok else f"got {_snippet(text)}")
    if kind is CheckKind.JSON_SCHEMA:
        parsed, why = parse_json(text, check.allow_fence)
        if why:
            return CheckResult(label, False, why)
        error = jsonschema.exceptions.best_match(
            jsonschema.validators.validator_for(value)(value).iter_errors(parsed))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            return CheckResult(label, False, f"{where + ': ' if where else ''}{error.message}")
        return CheckResult(label, True)
    if kind is CheckKind.PYTHON:
        try:
            result = run_python(value, answer)
        except Exception as exc:  # the expression failing on this answer is a failed check
            return CheckResult(label, False, f"raised {type(exc).__name__}: {exc}")
        return CheckResult(label, bool(result), "" if result else f"false for {_snippet(text)}")
    if kind is CheckKind.TOOL_CALL:
        return _tool_call(label, value, answer)
    if kind is CheckKind.MAX_TOKENS:
        ok = answer.tokens_out <= value
        return CheckResult(label, ok, "" if ok else f"{answer.tokens_out} tokens")
    if kind is CheckKind.MAX_SECONDS:
        ok = answer.seconds <= value
        return CheckResult(label, ok, "" if ok else f"{answer.seconds:.1f}s")
    raise ValueError(f"{kind} is not a deterministic check")


def _tool_call(label: str, spec: ToolCallSpec, answer: Answer) -> CheckResult:
    calls = [c for c in answer.tool_calls if c.name == spec.name]
    if not calls:
        if answer.tool_calls:
            names = ", ".join(c.name for c in answer.tool_calls)
            return CheckResult(label, False, f"called {names} instead")
        written = find_text_calls(answer.text)
        if written:
            return CheckResult(label, False, f"call to '{written[0].name}' written as text, not a structured "
                                             "call (does not count)")
        return CheckResult(label, False, f"no tool call; answered {_snippet(answer.text)}")
    problems = []
    for call in calls:
        problem = schema_violation(answer.tools.get(call.name), call.arguments) or _arguments_problem(spec, call)
        if problem is None:
            return CheckResult(label, True)
        problems.append(problem)
    return CheckResult(label, False, problems[0])


def schema_violation(parameters: dict[str, Any] | None, arguments: dict[str, Any]) -> str | None:
    if parameters is None:
        return None
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(parameters)(parameters).iter_errors(arguments))
    return None if error is None else f"arguments break the tool's schema: {error.message}"


def _arguments_problem(spec: ToolCallSpec, call: ToolCall) -> str | None:
    for name, constraint in spec.arguments.items():
        present = name in call.arguments
        if isinstance(constraint, dict) and "present" in constraint:
            if present != bool(constraint["present"]):
                return f"argument '{name}' {'missing' if not present else 'should be absent'}"
            continue
        if not present:
            return f"argument '{name}' missing in {json.dumps(call.arguments)[:80]}"
        if not arg_matches(constraint, call.arguments[name]):
            return f"argument '{name}' = {json.dumps(call.arguments[name])[:60]} does not match {constraint!r}"
    return None


def arg_matches(constraint: Any, actual: Any) -> bool:
    """A literal compares loosely (strings case-insensitively, numbers numerically); a mapping applies
    ``regex`` / ``contains`` / ``equals`` (exact) / ``one_of``."""
    if isinstance(constraint, dict):
        if "regex" in constraint:
            return re.search(constraint["regex"], _text(actual)) is not None
        if "contains" in constraint:
            return str(constraint["contains"]).casefold() in _text(actual).casefold()
        if "equals" in constraint:
            return actual == constraint["equals"]
        return any(arg_matches(option, actual) for option in constraint["one_of"])
    if isinstance(constraint, bool) or constraint is None:
        return actual is constraint or actual == constraint
    if isinstance(constraint, int | float):
        try:
            return math.isclose(float(actual), float(constraint))
        except (TypeError, ValueError):
            return False
    return _text(actual).strip().casefold() == str(constraint).strip().casefold()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def tool_use(answer: Answer) -> ToolUse:
    if answer.tool_calls:
        for call in answer.tool_calls:
            if call.name not in answer.tools or schema_violation(answer.tools[call.name], call.arguments):
                return ToolUse.INVALID
        return ToolUse.STRUCTURED
    return ToolUse.TEXT if find_text_calls(answer.text) else ToolUse.NONE
