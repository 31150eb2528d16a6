"""The orchestrator: classify fast, ask the model only when unsure, never fail to decide.

Fast path: the config-trained :class:`Classifier` (about a millisecond). Slow path, when its
confidence is below ``orchestration.threshold``: the orchestrator agent's chain, thinking off,
asked for a JSON object ``{"agent": …, "task": …}``. An invalid answer gets one repair
round-trip; after that (or if no model answers) ``orchestration.default`` takes the task.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

from modelyard.agents.classifier import Classifier, Decision, training_samples
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config.schema import Config
from modelyard.errors import ModelyardError
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_classifiers: dict[tuple, Classifier] = {}
_lock = threading.Lock()


def _classifier(samples: dict[str, list[str]]) -> Classifier:
    """One trained classifier per distinct training set (configs reloaded unchanged reuse it)."""
    key = tuple((name, tuple(texts)) for name, texts in samples.items())
    with _lock:
        if key not in _classifiers:
            _classifiers[key] = Classifier(samples)
            while len(_classifiers) > 8:
                _classifiers.pop(next(iter(_classifiers)))
        return _classifiers[key]


@dataclass(slots=True)
class Choice:
    agent: str
    task: str


def parse_choice(text: str, targets: list[str]) -> Choice | str:
    """The model's ``{"agent", "task"}`` answer, or why it is unusable (fed back for the repair)."""
    match = _OBJECT.search(text or "")
    if match is None:
        return "the answer contains no JSON object"
    try:
        value = json.loads(match.group(0))
    except ValueError as exc:
        return f"the JSON does not parse ({exc.msg})"
    if not isinstance(value, dict) or not isinstance(value.get("agent"), str):
        return 'the JSON object has no string field "agent"'
    wanted = value["agent"].strip().lower()
    agent = next((t for t in targets if t.lower() == wanted), None)
    if agent is None:
        return f"'{value['agent']}' is not one of the agents: {', '.join(targets)}"
    task = value.get("task")
    return Choice(agent, task if isinstance(task, str) else "")


class Orchestrator:
    def __init__(self, config: Config, name: str):
        self.config = config
        self.name = name
        self.targets = routing_targets(config, name)
        if not self.targets:
            raise ValueError(f"orchestrator '{name}' has no agents to delegate to")
        self.classifier = _classifier(training_samples(config, self.targets))
        default = config.orchestration.default
        if default not in config.agents:
            default = config.default_agent if config.default_agent in self.targets else self.targets[0]
        self.default = default

    @classmethod
    def from_config(cls, config: Config) -> Orchestrator | None:
        name = orchestrator_name(config)
        return cls(config, name) if name else None

    def decide_fast(self, text: str) -> Decision:
        return self.classifier.decide(text)

    async def decide(self, router: Router, text: str, *, request_id: str | None = None) -> Decision:
        """Fast path; below the threshold, the model; failing that, the default agent."""
        t0 = time.perf_counter()
        fast = self.classifier.decide(text)
        if fast.confidence >= self.config.orchestration.threshold:
            return fast
        method, choice, detail = await self._ask_model(router, text, request_id)
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(choice, Choice):
            return Decision(choice.agent, fast.confidence, method, ms, task=choice.task)
        return Decision(self.default, fast.confidence, "default", ms, detail=detail)

    def _prompt(self) -> str:
        lines = "\n".join(f"- {t}: {self.config.agents[t].description or t}" for t in self.targets)
        return ("You route a user's message to exactly one agent. Agents:\n"
                f"{lines}\n"
                'Answer with only a JSON object: {"agent": "<agent name>", "task": "<the task in one sentence>"}.')

    async def _ask_model(self, router: Router, text: str, request_id: str | None
                         ) -> tuple[str, Choice | None, str]:
        cfg = self.config.agents[self.name]
        messages = [Message("system", self._prompt()), Message("user", text)]
        method = "model"
        for round_trip in range(2):
            request = ChatRequest(messages=messages, thinking=False, json_output=True,
                                  max_tokens=cfg.max_tokens or 128, temperature=0.0)
            try:
                routed = await router.complete(self.name, request, parent_id=request_id)
            except ModelyardError as exc:  # chain exhausted: the default agent takes over
                return method, None, str(exc).splitlines()[0]
            parsed = parse_choice(routed.response.text, self.targets)
            if isinstance(parsed, Choice):
                return method, parsed, ""
            if round_trip == 0:
                method = "model_repaired"
                messages = [*messages, Message("assistant", routed.response.text),
                            Message("user", f"That answer is unusable: {parsed}. Reply with only the JSON object; "
                                            f"agent must be one of: {', '.join(self.targets)}.")]
        return method, None, f"invalid orchestrator answer after one repair: {parsed}"
