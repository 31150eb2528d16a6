"""The shape of a bench suite file, validated by pydantic (unknown keys are errors, like the config).

A suite names agents of your config; each agent has tasks; each task has a prompt (or messages),
optional tools, optional ``sample`` answer and one or more checks. A check is a mapping with exactly
one kind key (``contains``, ``regex``, ``json_schema``, ``tool_call``, …) plus its modifiers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckKind(StrEnum):
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    REGEX = "regex"
    EQUALS = "equals"
    JSON_SCHEMA = "json_schema"
    PYTHON = "python"
    TOOL_CALL = "tool_call"
    MAX_TOKENS = "max_tokens"
    MAX_SECONDS = "max_seconds"
    JUDGE = "judge"


#: argument constraints inside ``tool_call.arguments``: a literal, or a mapping with one of these keys
CONSTRAINT_KEYS = ("regex", "contains", "equals", "one_of", "present")


class ToolCallSpec(Strict):
    """The call a task expects: the function's name and constraints on some of its arguments."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _constraints(cls, value: dict[str, Any]) -> dict[str, Any]:
        for arg, constraint in value.items():
            if isinstance(constraint, dict):
                keys = [k for k in constraint if k in CONSTRAINT_KEYS]
                extra = [k for k in constraint if k not in CONSTRAINT_KEYS]
                if extra or len(keys) != 1:
                    raise ValueError(f"argument '{arg}': a constraint mapping needs exactly one of "
                                     f"{', '.join(CONSTRAINT_KEYS)} (got {', '.join(constraint) or 'nothing'})")
                if "one_of" in constraint and not isinstance(constraint["one_of"], list):
                    raise ValueError(f"argument '{arg}': one_of needs a list")
        return value


class CheckSpec(Strict):
    """One check. Exactly one kind key; ``case_sensitive`` and ``allow_fence`` modify the text checks."""

    contains: str | list[str] | None = None
    not_contains: str | list[str] | None = None
    regex: str | None = None
    equals: str | int | float | bool | None = None
    json_schema: dict[str, Any] | None = None
    python: str | None = None
    tool_call: ToolCallSpec | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    judge: str | None = Field(None, min_length=1, description="rubric for the judge model")
    case_sensitive: bool = Field(False, description="contains / not_contains / equals: compare case")
    allow_fence: bool = Field(False, description="json_schema: accept JSON wrapped in one ``` fence")

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        kinds = [k for k in CheckKind if getattr(self, k.value) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"a check needs exactly one of {', '.join(CheckKind)} (found: {found})")
        return self

    @property
    def kind(self) -> CheckKind:
        return next(k for k in CheckKind if getattr(self, k.value) is not None)

    @property
    def value(self) -> Any:
        return getattr(self, self.kind.value)

    @property
    def label(self) -> str:
        """Short name for tables: ``regex /\\b144\\b/``, ``json_schema``, ``tool_call read_file``."""
        kind, value = self.kind, self.value
        if kind in (CheckKind.JSON_SCHEMA, CheckKind.JUDGE):
            return str(kind)
        if kind is CheckKind.TOOL_CALL:
            return f"tool_call {value.name}"
        if kind is CheckKind.REGEX:
            shown = f"/{value}/"
        elif isinstance(value, list):
            shown = ", ".join(repr(v) for v in value)
        else:
            shown = repr(value) if isinstance(value, str) else str(value)
        return f"{kind} {shown if len(shown) <= 40 else shown[:39] + '…'}"


class ToolSpec(Strict):
    """A tool offered to the model (never executed: the bench looks at the call the model makes)."""

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class MessageSpec(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class SampleCall(Strict):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class SampleSpec(Strict):
    """An answer the task's checks must accept: proof, at load time, that the checks are right."""

    text: str = ""
    tool_calls: list[SampleCall] = Field(default_factory=list)


class TaskSpec(Strict):
    id: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[MessageSpec] | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    agent_tools: bool = Field(False, description="also offer the agent's configured tools (definitions only)")
    json_mode: bool = Field(False, description="ask the provider for JSON output (response_format / format)")
    max_tokens: int | None = Field(None, ge=1, description="output budget; default the agent's max_tokens")
    checks: list[CheckSpec] = Field(min_length=1)
    sample: str | SampleSpec | None = None

    @model_validator(mode="after")
    def _one_input(self) -> TaskSpec:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a task needs either 'prompt' or 'messages' (exactly one)")
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError("'messages' needs at least one user message")
        return self

    @property
    def judged(self) -> bool:
        return any(c.kind is CheckKind.JUDGE for c in self.checks)


class AgentTasks(Strict):
    tasks: list[TaskSpec] = Field(min_length=1)


class JudgeSpec(Strict):
    """The model that grades ``judge`` checks (a model of your config). Its verdicts are marked as judged."""

    model: str = Field(min_length=1)
    max_tokens: int = Field(200, ge=16)


class Suite(Strict):
    name: str = ""
    description: str = ""
    k: int = Field(3, ge=1, le=100, description="runs per task and model (overridden by -k)")
    judge: JudgeSpec | None = None
    agents: dict[str, AgentTasks] = Field(min_length=1)
